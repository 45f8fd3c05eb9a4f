import Redis

/// The Lua scripts of ``ProfileCoalescer``: each step of a batch is one script, so every process sees one
/// order of events. Every key is under the account's hash tag (`kr:{<account>}:coalesce:…`); a batch's keys
/// are named from its id inside the script (all in the account's slot, so the scripts also run on Redis
/// Cluster). Times are Redis's clock (`TIME`), one clock for all processes.
extension ProfileCoalescer {
    static let clock = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local function final(s) return (not s) or s == 'complete' or s == 'cancelled' or s == 'single' end
        """

    /// The hold of a finished batch whose members fall back to single calls (cancelled, or row errors not tied to
    /// rows): its identifiers stay taken (`identifiers` still names it) until every member has its outcome, so
    /// a newer upsert of one of them joins a later batch, which waits for this one (`after`), and never goes
    /// out singly ahead of an older member's single call.
    ///
    /// A member has its outcome once its done marker (`kr:{<account>}:idem:<command id>`, `result` or `dead`)
    /// exists: only then can no copy of it send again (a member whose single call succeeded but whose process
    /// died before the marker is delivered again and sends again). `batch:<id>:members` holds the command ids
    /// not seen done yet; `settled` takes out the done ones it meets (a random one at a time: a member still
    /// running ends the look at once, so a look costs a step or two plus the members it takes out).
    ///
    /// `hold_until` bounds a member that never comes back (its message dead-lettered by the broker, or purged):
    /// ``Settings/holdTTL`` after the last single-call visit of any member (each renews it). `release` gives the
    /// identifiers back (those a later batch has not taken over); `finish` holds or releases a batch that just
    /// became final.
    static let holdFunctions = """

        local function settled(prefix, markers, b)
            local k = prefix .. 'batch:' .. b
            local f = redis.call('HMGET', k, 'state', 'hold_until')
            local hold = tonumber(f[2] or '')
            -- A barrier whose member never came back (lost, purged) stops holding after its hold, like a batch.
            if f[1] == 'barrier' then return hold ~= nil and hold <= now end
            if not final(f[1]) then return false end
            if not hold or hold <= now then return true end
            for _ = 1, 100 do
                local c = redis.call('SRANDMEMBER', k .. ':members')
                if not c then return true end
                local m = redis.call('HMGET', markers .. c, 'result', 'dead')
                if not m[1] and not m[2] then return false end
                redis.call('SREM', k .. ':members', c)
            end
            return false
        end
        local function release(prefix, identifiers, b)
            local k = prefix .. 'batch:' .. b
            for _, identifier in ipairs(redis.call('SMEMBERS', k .. ':identifiers')) do
                if redis.call('HGET', identifiers, identifier) == b then redis.call('HDEL', identifiers, identifier) end
            end
            redis.call('DEL', k .. ':identifiers', k .. ':members')
            redis.call('HDEL', k, 'hold_until')
        end
        local function finish(prefix, identifiers, holdList, b, fallback, holdTTL, ttl)
            local k = prefix .. 'batch:' .. b
            if fallback and redis.call('SCARD', k .. ':members') > 0 then
                redis.call('HSET', k, 'hold_until', now + holdTTL)
                redis.call('RPUSH', holdList, b)
                redis.call('PEXPIRE', holdList, ttl)
            else
                release(prefix, identifiers, b)
            end
            -- The rows (up to 4.5 MB) were only needed to submit and to match errors: gone once final.
            redis.call('DEL', k .. ':rows')
        end
        """

    /// KEYS: member, identifiers. ARGV: prefix, done-marker prefix, identifiers…
    /// → {'member', batch, row, joined_at} | {'pending'} (an identifier is in a batch not settled yet: unfinished,
    /// or held for its members' single calls) | {'none'}.
    static let peekScript = RedisScript(
        clock + holdFunctions + """

            local m = redis.call('HMGET', KEYS[1], 'batch', 'row', 'joined_at')
            if m[1] then return {'member', m[1], m[2], m[3]} end
            for i = 3, #ARGV do
                local b = redis.call('HGET', KEYS[2], ARGV[i])
                if b and not settled(ARGV[1], ARGV[2], b) then return {'pending'} end
            end
            return {'none'}
            """)

    /// KEYS: member, identifiers, open, seq, holds. ARGV: prefix, row, row bytes, max rows, max bytes, window ms,
    /// ttl ms, command id, done-marker prefix, identifiers…
    /// → {'member', batch, row, joined_at} | {'joined', batch, row, joined_at, wait_ms}.
    /// Each join also looks at one held batch of the account (the oldest in turn) and releases it once settled,
    /// so the identifiers of a hold nobody asks about again do not stay in `identifiers`.
    static let joinScript = RedisScript(
        clock + holdFunctions + """

            local m = redis.call('HMGET', KEYS[1], 'batch', 'row', 'joined_at')
            if m[1] then return {'member', m[1], m[2], m[3]} end
            local prefix = ARGV[1]
            local markers = ARGV[9]
            local held = redis.call('LPOP', KEYS[5])
            if held then
                if settled(prefix, markers, held) then
                    release(prefix, KEYS[2], held)
                else
                    redis.call('RPUSH', KEYS[5], held)
                end
            end
            local rowBytes = tonumber(ARGV[3])
            local maxRows = tonumber(ARGV[4])
            local maxBytes = tonumber(ARGV[5])
            local window = tonumber(ARGV[6])
            local ttl = tonumber(ARGV[7])
            local function seal(id)
                local k = prefix .. 'batch:' .. id
                if redis.call('HGET', k, 'state') == 'open' then redis.call('HSET', k, 'state', 'sealed') end
                if redis.call('GET', KEYS[3]) == id then redis.call('DEL', KEYS[3]) end
            end
            local open = redis.call('GET', KEYS[3])
            if open then
                local f = redis.call('HMGET', prefix .. 'batch:' .. open, 'state', 'due_at', 'rows', 'bytes')
                if f[1] ~= 'open' or now >= tonumber(f[2]) or tonumber(f[3]) >= maxRows
                    or tonumber(f[4]) + rowBytes > maxBytes then
                    seal(open)
                    open = nil
                end
            end
            local preds = {}
            for i = 10, #ARGV do
                local b = redis.call('HGET', KEYS[2], ARGV[i])
                if b and not settled(prefix, markers, b) then
                    if b == open then
                        seal(open)
                        open = nil
                    end
                    preds[b] = true
                end
            end
            if not open then
                -- An id is never reused: the counter never expires (PERSIST also clears the TTL that earlier
                -- versions gave it), and a new batch starts from none of the keys a batch of its id could have had.
                open = tostring(redis.call('INCR', KEYS[4]))
                redis.call('PERSIST', KEYS[4])
                local b = prefix .. 'batch:' .. open
                redis.call('DEL', b, b .. ':rows', b .. ':identifiers', b .. ':members', b .. ':errors')
                redis.call('HSET', b, 'state', 'open', 'opened_at', now,
                    'due_at', now + window, 'rows', 0, 'bytes', 0)
                redis.call('SET', KEYS[3], open, 'PX', window + 60000)
            end
            local k = prefix .. 'batch:' .. open
            local after = {}
            for p, _ in pairs(preds) do
                if p ~= open then table.insert(after, p) end
            end
            if #after > 0 then
                local current = redis.call('HGET', k, 'after')
                local list = table.concat(after, ',')
                if current and current ~= '' then list = current .. ',' .. list end
                redis.call('HSET', k, 'after', list)
            end
            local n = redis.call('RPUSH', k .. ':rows', ARGV[2])
            local rows = redis.call('HINCRBY', k, 'rows', 1)
            local bytes = redis.call('HINCRBY', k, 'bytes', rowBytes)
            for i = 10, #ARGV do
                redis.call('HSET', KEYS[2], ARGV[i], open)
                redis.call('SADD', k .. ':identifiers', ARGV[i])
            end
            redis.call('SADD', k .. ':members', ARGV[8])
            redis.call('HSET', KEYS[1], 'batch', open, 'row', n - 1, 'joined_at', now)
            for _, key in ipairs({KEYS[1], KEYS[2], KEYS[5], k, k .. ':rows', k .. ':identifiers', k .. ':members'}) do
                redis.call('PEXPIRE', key, ttl)
            end
            local wait = tonumber(redis.call('HGET', k, 'due_at')) - now
            if rows >= maxRows or bytes >= maxBytes then
                seal(open)
                wait = 0
            end
            return {'joined', open, n - 1, now, wait}
            """)

    /// KEYS: member, identifiers, seq, holds, open. ARGV: prefix, done-marker prefix, command id, ttl ms, hold ttl
    /// ms, identifiers… → {'member', batch, row, joined_at} | {'joined', batch, 0, joined_at} | {'none'}.
    /// For an upsert that cannot be coalesced (``CoalescedRow``) while an identifier of its profile is in a
    /// batch not settled yet: a **barrier**, a batch of that one member and no rows, in state `barrier`, that
    /// takes the identifiers over (so a newer upsert waits for it, as for any batch) and waits for the batches it
    /// found (`after`); then its member goes out singly (state `single`) and holds it until its outcome, like a
    /// member of a cancelled batch. `hold_until` bounds a member that never comes back. `none`: no identifier
    /// is pending, the upsert goes out singly at once. A barrier behind the open batch seals it: a newer upsert
    /// joining that batch would make it wait for the barrier, which waits for it.
    static let barrierScript = RedisScript(
        clock + holdFunctions + """

            local m = redis.call('HMGET', KEYS[1], 'batch', 'row', 'joined_at')
            if m[1] then return {'member', m[1], m[2], m[3]} end
            local prefix = ARGV[1]
            local after = {}
            local seen = {}
            for i = 6, #ARGV do
                local b = redis.call('HGET', KEYS[2], ARGV[i])
                if b and not seen[b] and not settled(prefix, ARGV[2], b) then
                    seen[b] = true
                    table.insert(after, b)
                end
            end
            if #after == 0 then return {'none'} end
            local open = redis.call('GET', KEYS[5])
            if open and seen[open] then
                local o = prefix .. 'batch:' .. open
                if redis.call('HGET', o, 'state') == 'open' then redis.call('HSET', o, 'state', 'sealed') end
                redis.call('DEL', KEYS[5])
            end
            local ttl = tonumber(ARGV[4])
            local id = tostring(redis.call('INCR', KEYS[3]))
            redis.call('PERSIST', KEYS[3])
            local k = prefix .. 'batch:' .. id
            redis.call('DEL', k, k .. ':rows', k .. ':identifiers', k .. ':members', k .. ':errors')
            redis.call('HSET', k, 'state', 'barrier', 'opened_at', now, 'after', table.concat(after, ','),
                'rows', 0, 'bytes', 0, 'hold_until', now + tonumber(ARGV[5]))
            redis.call('SADD', k .. ':members', ARGV[3])
            for i = 6, #ARGV do
                redis.call('HSET', KEYS[2], ARGV[i], id)
                redis.call('SADD', k .. ':identifiers', ARGV[i])
            end
            redis.call('HSET', KEYS[1], 'batch', id, 'row', 0, 'joined_at', now)
            redis.call('RPUSH', KEYS[4], id)
            for _, key in ipairs({KEYS[1], KEYS[2], KEYS[4], k, k .. ':identifiers', k .. ':members'}) do
                redis.call('PEXPIRE', key, ttl)
            end
            return {'joined', id, 0, now}
            """)

    /// KEYS: batch, open, errors. ARGV: prefix, batch id, row, token, lock ttl ms, poll interval ms, command id,
    /// hold ttl ms, done-marker prefix.
    /// → {'gone'} | {'wait', ms, job_id} | {'submit', rows} | {'adopt', rows, submitting_at} | {'poll', job_id}
    ///   | {'final', state, job_id, row error or '', uncertain}.
    /// A batch waits for the batches it shares identifiers with (`after`) to settle. A `final` answer that sends
    /// the member singly renews its batch's hold; one with the row's error takes the member out of the hold (it
    /// ends without a call).
    static let advanceScript = RedisScript(
        clock + holdFunctions + """

            local k = KEYS[1]
            local f = redis.call('HMGET', k, 'state', 'due_at', 'after', 'rows', 'lock', 'lock_until',
                'submitting_at', 'job_id', 'polled_at', 'uncertain', 'hold_until')
            local state = f[1]
            if not state then return {'gone'} end
            local lockTTL = tonumber(ARGV[5])
            local interval = tonumber(ARGV[6])
            local lockUntil = tonumber(f[6] or '0') or 0
            local job = f[8] or ''
            if state == 'barrier' then
                local hold = tonumber(f[11] or '') or 0
                redis.call('HSET', k, 'hold_until', math.max(hold, now + tonumber(ARGV[8])))
                if f[3] and f[3] ~= '' then
                    for p in string.gmatch(f[3], '[^,]+') do
                        if not settled(ARGV[1], ARGV[9], p) then return {'wait', 1000, job} end
                    end
                end
                redis.call('HSET', k, 'state', 'single', 'finished_at', now)
                return {'final', 'single', '', '', '0'}
            end
            if state == 'open' or state == 'sealed' then
                if state == 'open' then
                    local wait = tonumber(f[2]) - now
                    if wait > 0 then return {'wait', wait, job} end
                    redis.call('HSET', k, 'state', 'sealed')
                    if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
                end
                if f[3] and f[3] ~= '' then
                    for p in string.gmatch(f[3], '[^,]+') do
                        if not settled(ARGV[1], ARGV[9], p) then return {'wait', 1000, job} end
                    end
                end
                redis.call('HSET', k, 'state', 'submitting', 'submitting_at', now, 'lock', ARGV[4],
                    'lock_until', now + lockTTL)
                return {'submit', f[4]}
            end
            if state == 'submitting' then
                if lockUntil > now then return {'wait', math.min(lockUntil - now, interval), job} end
                redis.call('HSET', k, 'lock', ARGV[4], 'lock_until', now + lockTTL)
                return {'adopt', f[4], f[7]}
            end
            if state == 'submitted' then
                if lockUntil > now then return {'wait', math.min(lockUntil - now, interval), job} end
                local due = (tonumber(f[9] or '0') or 0) + interval
                if due > now then return {'wait', due - now, job} end
                redis.call('HSET', k, 'lock', ARGV[4], 'lock_until', now + lockTTL)
                return {'poll', job}
            end
            local e = redis.call('HGET', KEYS[3], ARGV[3])
            if e then
                redis.call('SREM', k .. ':members', ARGV[7])
            elseif state ~= 'complete' or f[10] == '1' then
                local hold = tonumber(f[11] or '')
                if hold and hold > now then
                    redis.call('HSET', k, 'hold_until', math.max(hold, now + tonumber(ARGV[8])))
                end
            end
            return {'final', state, job, e or '', f[10] or '0'}
            """)

    /// KEYS: batch. ARGV: token. Gives a submit claim back (nothing reached Klaviyo): the batch is sealed again
    /// and the next visitor submits it. → 1 | 0 (not this token's claim any more).
    static let releaseSubmitScript = RedisScript(
        """
        local f = redis.call('HMGET', KEYS[1], 'state', 'lock', 'job_id')
        if f[1] ~= 'submitting' or f[2] ~= ARGV[1] or (f[3] and f[3] ~= '') then return 0 end
        redis.call('HSET', KEYS[1], 'state', 'sealed', 'lock', '', 'lock_until', 0)
        return 1
        """)

    /// KEYS: batch. ARGV: token. Gives a poll claim back. → 1 | 0.
    static let releaseLockScript = RedisScript(
        """
        if redis.call('HGET', KEYS[1], 'lock') ~= ARGV[1] then return 0 end
        redis.call('HSET', KEYS[1], 'lock', '', 'lock_until', 0)
        return 1
        """)

    /// KEYS: batch. ARGV: token, lock ttl ms. Before submitting again after an adoption found no job: the new
    /// `submitting_at`. → 1 | 0 (the claim was lost).
    static let resubmitScript = RedisScript(
        clock + """

            local f = redis.call('HMGET', KEYS[1], 'state', 'lock', 'job_id')
            if f[1] ~= 'submitting' or f[2] ~= ARGV[1] or (f[3] and f[3] ~= '') then return 0 end
            redis.call('HSET', KEYS[1], 'submitting_at', now, 'lock_until', now + tonumber(ARGV[2]))
            return 1
            """)

    /// KEYS: batch, jobs. ARGV: job id, job status, ttl ms.
    /// → {'ok', job_id} | {'already', job_id} (another process recorded a job first) | {'gone'}.
    static let submittedScript = RedisScript(
        clock + """

            local f = redis.call('HMGET', KEYS[1], 'state', 'job_id')
            if not f[1] then return {'gone'} end
            if f[2] and f[2] ~= '' then return {'already', f[2]} end
            redis.call('HSET', KEYS[1], 'state', 'submitted', 'job_id', ARGV[1], 'status', ARGV[2], 'polled_at', now,
                'lock', '', 'lock_until', 0)
            redis.call('SADD', KEYS[2], ARGV[1])
            redis.call('PEXPIRE', KEYS[2], ARGV[3])
            return {'ok', ARGV[1]}
            """)

    /// KEYS: batch, errors, identifiers, holds. ARGV: batch id, status, final ('1'/'0'), final state, uncertain,
    /// ttl ms, hold ttl ms, prefix, then row, error pairs. A poll's answer: the cached status, and when the job is
    /// final the row errors and the final state. The batch's identifiers are then free for single calls again,
    /// unless members go out singly (cancelled, or uncertain): then they are held until those have their outcomes.
    /// → 'ok' | 'stale' (another process already finished the batch).
    static let polledScript = RedisScript(
        clock + holdFunctions + """

            local state = redis.call('HGET', KEYS[1], 'state')
            if state ~= 'submitted' then return 'stale' end
            redis.call('HSET', KEYS[1], 'status', ARGV[2], 'polled_at', now, 'lock', '', 'lock_until', 0)
            if ARGV[3] ~= '1' then return 'ok' end
            for i = 9, #ARGV, 2 do
                redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
            end
            redis.call('PEXPIRE', KEYS[2], ARGV[6])
            redis.call('HSET', KEYS[1], 'state', ARGV[4], 'uncertain', ARGV[5], 'finished_at', now)
            finish(ARGV[8], KEYS[3], KEYS[4], ARGV[1], ARGV[4] ~= 'complete' or ARGV[5] == '1', tonumber(ARGV[7]),
                ARGV[6])
            return 'ok'
            """)

    /// KEYS: batch, identifiers, holds. ARGV: batch id, reason, hold ttl ms, ttl ms, prefix. A batch that will
    /// never become a job (Klaviyo refused the whole request, or forgot the job): `cancelled`, and every member
    /// goes out singly (its identifiers held until they have their outcomes). A batch already final is left
    /// alone: a poll that took over from a slow one may have finished it (`complete`, members already ended
    /// with the job's outcome) before the slow one's 404 arrived. → 'ok' | 'gone' | 'final'.
    static let abandonScript = RedisScript(
        clock + holdFunctions + """

            local state = redis.call('HGET', KEYS[1], 'state')
            if not state then return 'gone' end
            if final(state) then return 'final' end
            redis.call('HSET', KEYS[1], 'state', 'cancelled', 'uncertain', '1', 'reason', ARGV[2], 'finished_at', now,
                'lock', '', 'lock_until', 0)
            finish(ARGV[5], KEYS[2], KEYS[3], ARGV[1], true, tonumber(ARGV[3]), ARGV[4])
            return 'ok'
            """)

    /// KEYS: the account's recorded job ids. ARGV: job id, ttl ms. Records a job no batch submitted (a
    /// `profile.bulk_import` command's). → 1.
    static let knownJobScript = RedisScript(
        """
        redis.call('SADD', KEYS[1], ARGV[1])
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return 1
        """)

    /// KEYS: a batch's rows. → the rows in request order.
    static let rowsScript = RedisScript("return redis.call('LRANGE', KEYS[1], 0, -1)")

    /// KEYS: the account's recorded job ids. → the ids.
    static let membersScript = RedisScript("return redis.call('SMEMBERS', KEYS[1])")
}
