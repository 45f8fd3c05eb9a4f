import Synchronization

/// Long-lived tasks that process the consumer's commands, one at a time each, instead of one new task per command.
///
/// A Swift task keeps its async frames in slabs it mallocs as its stack first grows and frees when it ends. A
/// command's frames need about 45 kB in a dozen slabs of 1–15 kB, so a task per command paid a dozen large
/// mallocs and frees (glibc's slow paths: no per-thread cache above 1 kB, fastbin consolidation) plus the task's
/// own creation. A worker keeps its slabs from one command to the next.
///
/// The pool is elastic: a job goes to an idle worker, or the caller starts a new worker with it (the caller has
/// already taken a consumer slot, so workers only outnumber the slots when commands gave theirs back early). A
/// worker that finishes parks while fewer than `maxIdle` do, else it ends, so the slabs kept stay bounded.
/// Workers are children of the consumer's task group: cancelling the group cancels the command a worker runs,
/// exactly as it cancelled a command's own task.
final class CommandWorkers: Sendable {
    typealias Job = @Sendable () async -> Void

    struct State {
        /// Parked workers, the most recently parked last (its slabs and cache lines are the warmest).
        var idle: [UnsafeContinuation<Job?, Never>] = []
        /// No more jobs: parked and parking workers end.
        var closed = false
    }

    let state = Mutex(State())
    /// Workers parked at most; one that finishes beyond this ends.
    let maxIdle: Int

    init(maxIdle: Int) {
        self.maxIdle = max(1, maxIdle)
    }

    /// Gives `job` to a parked worker; false when none is parked (the caller then starts ``work(first:)``).
    func handOff(_ job: @escaping Job) -> Bool {
        guard let worker = state.withLock({ $0.idle.popLast() }) else { return false }
        worker.resume(returning: job)
        return true
    }

    /// A worker's life: `first`, then every job handed to it while parked, until the pool closes, its task is
    /// cancelled, or enough others are parked.
    func work(first: @escaping Job) async {
        var job: Job? = first
        while let current = job {
            await current()
            job = await next()
        }
    }

    /// Parks until a job is handed over; nil when the worker ends instead.
    func next() async -> Job? {
        if Task.isCancelled { return nil }
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Job?, Never>) in
                let parked = state.withLock { state in
                    guard !state.closed, state.idle.count < maxIdle else { return false }
                    state.idle.append(continuation)
                    return true
                }
                if !parked { continuation.resume(returning: nil) }
            }
        } onCancel: {
            // The consumer's group is cancelled: nothing more is handed out, every parked worker ends.
            close()
        }
    }

    /// Ends every parked worker and every worker that finishes from now on; jobs are no longer handed over.
    func close() {
        let parked = state.withLock { state in
            state.closed = true
            defer { state.idle.removeAll() }
            return state.idle
        }
        for worker in parked { worker.resume(returning: nil) }
    }

    /// Workers parked now (for tests).
    var idleCount: Int { state.withLock { $0.idle.count } }
}
