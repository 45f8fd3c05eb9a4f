#!/usr/bin/env bash
# Install the Debian packages Klaviyo Relay needs to build and test, idempotently.
#
#   scripts/dev/install-deps.sh
#
# Installs only what is missing (checked with dpkg-query); runs `apt-get update` only when something
# must be installed. Also checks that a Swift 6 toolchain is reachable (it does not come from apt).
# Prints one summary line. Environment: none required; DEBIAN_FRONTEND is forced to noninteractive.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

PACKAGES=(
    rabbitmq-server
    redis-server
    librabbitmq-dev
    libhiredis-dev
    libcurl4-openssl-dev
    pkgconf
    openssl
    curl
    python3
    python3-jsonschema
    python3-pip
    chromium
    chromium-driver
    prometheus
)

is_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == "installed" ]]
}

missing=()
jsonschema_note=""
for pkg in "${PACKAGES[@]}"; do
    if [[ "$pkg" == python3-jsonschema ]] && have python3 && python3 -c 'import jsonschema' 2>/dev/null; then
        jsonschema_note=" (python3 jsonschema already importable)"
        continue # e.g. from pip: no need for the Debian package
    fi
    if ! is_installed "$pkg"; then
        missing+=("$pkg")
    fi
done

summary=""
if ((${#missing[@]} == 0)); then
    summary="all ${#PACKAGES[@]} packages present$jsonschema_note"
else
    need_root "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_log="$(var_path install-deps.log)"
    started="$(now_ms)"

    # Package postinst scripts try to start rabbitmq-server/redis-server through invoke-rc.d. In a
    # container without a policy-rc.d that would boot a broker under the default node name (rabbit@<host>),
    # which then blocks port 5672 for scripts/dev/services.sh. Deny service starts while installing.
    policy=/usr/sbin/policy-rc.d
    temp_policy=false
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        temp_policy=true
        trap 'rm -f "$policy"' EXIT
    fi

    if ! { apt-get update -q && apt-get install -y -q "${missing[@]}"; } >"$apt_log" 2>&1; then
        tail -n 30 "$apt_log" >&2
        die "apt-get failed installing: ${missing[*]} (full log: $apt_log)"
    fi
    if $temp_policy; then
        rm -f "$policy"
        trap - EXIT
    fi
    summary="installed ${#missing[@]} package(s) in $(elapsed_since "$started"): ${missing[*]}"
fi

# From PyPI (Debian has neither): selenium for the browser test of `serve`'s settings page (the version checked
# in shared/notes/ENVIRONMENT.md; the test gives it both binary paths, so it downloads no browser or driver),
# pydantic-asyncapi, the AsyncAPI 3.0 object model scripts/check/check-asyncapi.py validates schemas/asyncapi.yaml with,
# and kubernetes-validate, the Kubernetes API schemas (bundled, so no download at run time) that
# scripts/check/check-manifests.py validates deploy/kubernetes with (it needs jsonschema >= 4.23, which pip then
# installs next to an older Debian python3-jsonschema).
PIP_PACKAGES=("selenium:selenium" "yaml:pyyaml" "pydantic_asyncapi:pydantic-asyncapi==0.3.2"
    "kubernetes_validate:kubernetes-validate==1.37.0")
for entry in "${PIP_PACKAGES[@]}"; do
    module="${entry%%:*}" requirement="${entry#*:}"
    python3 -c "import $module" 2>/dev/null && continue
    need_root "installing $requirement (pip)"
    pip_log="$(var_path install-deps-pip.log)"
    if ! { python3 -m pip install -q "$requirement" ||
        python3 -m pip install -q --break-system-packages "$requirement"; } >"$pip_log" 2>&1; then
        tail -n 20 "$pip_log" >&2
        die "pip failed installing $requirement (full log: $pip_log)"
    fi
    summary="$summary; $requirement installed with pip"
done

swift_version="$(require_swift)"
log "$summary; swift $swift_version ($(command -v swift))"
