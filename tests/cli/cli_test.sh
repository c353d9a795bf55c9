#!/usr/bin/env bash
# End-to-end tests of the taskwire CLI: a real taskwired on a free port, the
# real taskwire binary against it, asserting stdout, stderr and exit codes.
#
# Run by `bazel test //tests/cli:cli_test`. Outside Bazel:
#   bazel build //server:taskwired //client/cli:taskwire
#   TASKWIRED=bazel-bin/server/taskwired TASKWIRE=bazel-bin/client/cli/taskwire \
#       tests/cli/cli_test.sh
#
# Every wait is bounded: each CLI call runs under `timeout`, the server and
# the watch are polled with deadlines, and waiting on tasks relies on the
# server's own semantics (await, gather, wait), never on sleeping.
set -uo pipefail

python=/usr/bin/python3
runfiles="${TEST_SRCDIR:-}/taskwire"
TASKWIRE="${TASKWIRE:-$runfiles/client/cli/taskwire}"
TASKWIRED="${TASKWIRED:-$runfiles/server/taskwired}"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
logs="${TEST_UNDECLARED_OUTPUTS_DIR:-$tmp}"
# Long enough for a loaded 2-core machine, short enough that a hang fails
# this test rather than Bazel's timeout.
CALL_LIMIT=30

NL=$'\n'

# A well-formed id that no server has handed out (the ULID spec's example).
UNKNOWN_ID=01ARZ3NDEKTSV4RRFFQ69G5FAV

passed=0
failed=0
failed_names=()
current_ok=1

# --------------------------------------------------------------------------
# Helpers.

log() { printf '%s\n' "$*" >&2; }

# Marks the running test failed, with the reason.
flunk() {
  current_ok=0
  log "    $*"
}

# tw ARGS...: runs the CLI against the test server; sets OUT, ERR and RC.
tw() { tw_at "$SERVER" "$@"; }

# tw_at ADDRESS ARGS...: the same against any address.
tw_at() {
  local address=$1
  shift
  raw "$TASKWIRE" --server "$address" "$@"
}

# raw COMMAND...: runs a command under the time limit; sets OUT, ERR and RC.
raw() {
  timeout "$CALL_LIMIT" "$@" >"$tmp/out" 2>"$tmp/err"
  RC=$?
  OUT=$(cat "$tmp/out")
  ERR=$(cat "$tmp/err")
  if ((RC == 124)); then flunk "timed out after ${CALL_LIMIT}s: $*"; fi
}

expect_rc() {
  local want=$1 what=$2
  if [[ "$RC" != "$want" ]]; then
    flunk "$what: exit $RC, want $want (stdout: '$OUT', stderr: '$ERR')"
  fi
}

expect_eq() {
  local got=$1 want=$2 what=$3
  if [[ "$got" != "$want" ]]; then flunk "$what: got '$got', want '$want'"; fi
}

# expect_match TEXT REGEX WHAT
expect_match() {
  local text=$1 pattern=$2 what=$3
  if ! [[ "$text" =~ $pattern ]]; then flunk "$what: '$text' does not match /$pattern/"; fi
}

expect_no_match() {
  local text=$1 pattern=$2 what=$3
  if [[ "$text" =~ $pattern ]]; then flunk "$what: '$text' matches /$pattern/"; fi
}

# The error contract: exactly one line on stderr, starting with "taskwire: ".
expect_one_line_error() {
  local what=$1
  local lines
  lines=$(printf '%s\n' "$ERR" | wc -l)
  if [[ -z "$ERR" || "$lines" != 1 ]]; then
    flunk "$what: want one line on stderr, got $lines: '$ERR'"
  fi
  expect_match "$ERR" '^taskwire: ' "$what: stderr prefix"
}

# py_check JSON_TEXT PYTHON_EXPRESSION WHAT: evaluates the expression with
# `docs` bound to the JSON objects, one per line of the text.
py_check() {
  local text=$1 expression=$2 what=$3
  if ! printf '%s\n' "$text" | "$python" -c '
import json, sys
docs = [json.loads(line) for line in sys.stdin.read().splitlines() if line.strip()]
ok = eval(sys.argv[1])
sys.exit(0 if ok else 1)
' "$expression" 2>"$tmp/py_err"; then
    flunk "$what: JSON check failed: $expression on '$text' $(cat "$tmp/py_err")"
  fi
}

# new_task ARGS...: `taskwire create ARGS` on the test server; sets ID.
new_task() {
  tw create "$@"
  expect_rc 0 "create $*"
  expect_match "$OUT" '^[0-9A-HJKMNP-TV-Z]{26}$' "create prints an id"
  ID=$OUT
}

now() { date +%s.%N; }

# elapsed_between START END: seconds, as a decimal.
elapsed_between() { "$python" -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' "$1" "$2"; }

# in_range VALUE LOW HIGH: LOW <= VALUE < HIGH.
in_range() { "$python" -c 'import sys; v, lo, hi = map(float, sys.argv[1:]); sys.exit(0 if lo <= v < hi else 1)' "$@"; }

# A port nothing listens on: bound once by the kernel's choice, then freed.
closed_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# --------------------------------------------------------------------------
# The server.

server_pid=""

start_server() {
  rm -f "$tmp/port"
  # A small args limit, so that RESOURCE_EXHAUSTED is easy to provoke; a
  # short drain grace, so that stopping is quick.
  "$TASKWIRED" --listen 127.0.0.1:0 --port-file "$tmp/port" --drain-grace 1 \
    --max-args-bytes 4096 --refuse-unknown-kinds --log-level warn >"$logs/taskwired.log" 2>&1 &
  server_pid=$!
  local deadline=$((SECONDS + 20))
  while [[ ! -s "$tmp/port" ]]; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      log "taskwired exited before serving:"
      cat "$logs/taskwired.log" >&2
      exit 1
    fi
    if ((SECONDS > deadline)); then
      log "taskwired did not write its port within 20 s"
      exit 1
    fi
    sleep 0.05
  done
  SERVER="127.0.0.1:$(cat "$tmp/port")"
}

# Sends SIGTERM and waits (bounded) for the server to exit; sets SERVER_RC.
stop_server() {
  [[ -n "$server_pid" ]] || return 0
  kill -TERM "$server_pid" 2>/dev/null
  local deadline=$((SECONDS + 15))
  while kill -0 "$server_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
  if kill -0 "$server_pid" 2>/dev/null; then
    log "taskwired ignored SIGTERM for 15 s; killing it"
    kill -KILL "$server_pid" 2>/dev/null
  fi
  wait "$server_pid" 2>/dev/null
  SERVER_RC=$?
  server_pid=""
}

watch_pid=""
cleanup() {
  if [[ -n "$watch_pid" ]]; then kill "$watch_pid" 2>/dev/null; fi
  stop_server
}
trap cleanup EXIT

# --------------------------------------------------------------------------
# Tests: each a function; a test passes when none of its checks flunk.

test_help_for_every_subcommand() {
  raw "$TASKWIRE" --help
  expect_rc 0 "--help"
  expect_match "$OUT" 'Usage: taskwire' "--help usage"
  for code in 0 1 2 3 4 5; do
    expect_match "$OUT" "(^|${NL})  $code  " "--help documents exit code $code"
  done
  expect_match "$OUT" 'TASKWIRE_SERVER' "--help documents TASKWIRE_SERVER"
  for command in create run get await gather wait cancel ls watch health; do
    raw "$TASKWIRE" "$command" --help
    expect_rc 0 "$command --help"
    expect_match "$OUT" "Usage: taskwire $command" "$command --help usage"
    expect_eq "$ERR" "" "$command --help stderr"
  done
}

test_health() {
  tw health
  expect_rc 0 "health"
  expect_eq "$OUT" "SERVING" "health output"
  tw --json health
  expect_rc 0 "--json health"
  py_check "$OUT" 'docs == [{"status": "SERVING"}]' "--json health"
}

test_unreachable_server() {
  local port
  port=$(closed_port)
  tw_at "127.0.0.1:$port" health
  expect_rc 3 "health against a closed port"
  expect_one_line_error "health against a closed port"
  expect_match "$ERR" "^taskwire: cannot reach the server at 127\.0\.0\.1:$port \(.+\)$" \
    "unreachable message"
  tw_at "127.0.0.1:$port" get "$UNKNOWN_ID"
  expect_rc 3 "get against a closed port"
  expect_one_line_error "get against a closed port"
}

test_server_env_variable() {
  local port
  port=$(closed_port)
  TASKWIRE_SERVER="$SERVER" raw "$TASKWIRE" health
  expect_rc 0 "health with TASKWIRE_SERVER"
  TASKWIRE_SERVER="127.0.0.1:$port" raw "$TASKWIRE" health
  expect_rc 3 "health with TASKWIRE_SERVER at a closed port"
  expect_match "$ERR" "127\.0\.0\.1:$port" "the message names TASKWIRE_SERVER's address"
  # The flag wins over the environment.
  TASKWIRE_SERVER="127.0.0.1:$port" raw "$TASKWIRE" --server "$SERVER" health
  expect_rc 0 "--server over TASKWIRE_SERVER"
}

test_echo_round_trip() {
  new_task echo --arg value=hi --name greeting --label suite=cli
  local id=$ID
  tw get "$id"
  expect_rc 0 "get"
  expect_match "$OUT" "(^|${NL})id: +$id(${NL}|$)" "get shows the id"
  expect_match "$OUT" "(^|${NL})kind: +echo(${NL}|$)" "get shows the kind"
  expect_match "$OUT" "(^|${NL})name: +greeting(${NL}|$)" "get shows the name"
  expect_match "$OUT" "(^|${NL})labels: +suite=cli(${NL}|$)" "get shows the labels"
  tw await "$id"
  expect_rc 0 "await echo"
  expect_eq "$OUT" '"hi"' "await prints the result as JSON"
  tw get "$id" --json
  expect_rc 0 "get --json after the subcommand"
  py_check "$OUT" "len(docs) == 1 and docs[0]['id'] == '$id' and docs[0]['state'] == 'TASK_STATE_SUCCEEDED' and docs[0]['result'] == 'hi'" \
    "get --json"
  tw run echo --args '{"value": {"a": [1, 2.5], "b": null}}'
  expect_rc 0 "run echo --args"
  py_check "$OUT" 'docs == [{"a": [1, 2.5], "b": None}]' "run prints the result"
  tw --json run echo --arg value=1
  expect_rc 0 "run --json"
  py_check "$OUT" "len(docs) == 1 and docs[0]['state'] == 'TASK_STATE_SUCCEEDED' and docs[0]['result'] == 1" \
    "run --json prints the task"
}

test_arg_values_parse_as_json_else_string() {
  tw --json create echo --arg value=2
  expect_rc 0 "create --arg value=2"
  py_check "$OUT" "docs[0]['args'] == {'value': 2}" "--arg value=2 is a number"
  tw --json create echo --arg value=hi
  py_check "$OUT" "docs[0]['args'] == {'value': 'hi'}" "--arg value=hi is a string"
  tw --json create echo --arg 'value="2"'
  py_check "$OUT" "docs[0]['args'] == {'value': '2'}" "--arg value='\"2\"' is a string"
  tw --json create echo --arg 'value={"k": [true, null]}'
  py_check "$OUT" "docs[0]['args'] == {'value': {'k': [True, None]}}" "--arg with a JSON object"
  tw --json create echo --arg value=
  py_check "$OUT" "docs[0]['args'] == {'value': ''}" "--arg value= is the empty string"
  # --arg pairs are laid over --args.
  tw --json create fail --args '{"message": "a", "type": "T"}' --arg message=b
  py_check "$OUT" "docs[0]['args'] == {'message': 'b', 'type': 'T'}" "--arg over --args"
}

test_sleep_and_wait_random() {
  new_task sleep --arg seconds=0.2
  local id=$ID
  tw await "$id" --timeout 20
  expect_rc 0 "await sleep"
  expect_eq "$OUT" "null" "sleep's result"
  tw run sleep --arg seconds=0.1
  expect_rc 0 "run sleep"
  expect_eq "$OUT" "null" "run sleep's result"
  tw run wait_random --arg max_delay=0.1
  expect_rc 0 "run wait_random"
  py_check "$OUT" 'isinstance(docs[0], float) and 0 <= docs[0] <= 0.1' "wait_random's delay"
}

test_failing_task() {
  tw run fail --arg message=boom --arg type=ValueError
  expect_rc 1 "run fail"
  expect_eq "$OUT" "" "a failed run prints no result"
  expect_one_line_error "run fail"
  expect_match "$ERR" '^taskwire: task [0-9A-Z]{26} failed: ValueError: boom$' "run fail message"
  new_task fail --arg message=oops
  local id=$ID
  tw await "$id"
  expect_rc 1 "await a failed task"
  expect_match "$ERR" "^taskwire: task $id failed: TaskFailure: oops$" "await fail message"
  tw --json await "$id"
  expect_rc 1 "await --json a failed task"
  py_check "$OUT" "docs[0]['error'] == {'type': 'TaskFailure', 'message': 'oops'}" \
    "await --json shows the error"
  tw get "$id"
  expect_rc 0 "get a failed task"
  expect_match "$OUT" "(^|${NL})error: +TaskFailure: oops(${NL}|$)" "get shows the error"
}

test_cancel() {
  new_task sleep --arg seconds=60
  local id=$ID
  tw cancel "$id"
  expect_rc 0 "cancel"
  expect_match "$OUT" "(^|${NL})state: +cancelled(${NL}|$)" "cancel shows the cancelled task"
  tw await "$id"
  expect_rc 5 "await a cancelled task"
  expect_one_line_error "await a cancelled task"
  expect_match "$ERR" "^taskwire: task $id was cancelled" "cancelled message"
  tw cancel "$id"
  expect_rc 0 "cancelling again changes nothing"
  tw run echo --arg value=1
  new_task echo --arg value=1
  id=$ID
  tw await "$id"
  tw cancel "$id"
  expect_rc 0 "cancel a finished task"
  expect_match "$OUT" "(^|${NL})state: +succeeded(${NL}|$)" "a finished task stays as it was"
}

test_await_timeout() {
  new_task sleep --arg seconds=60
  local id=$ID
  tw await "$id" --timeout 0.2
  expect_rc 4 "await --timeout"
  expect_one_line_error "await --timeout"
  expect_match "$ERR" "^taskwire: task $id is still (pending|running) after 0\.2s$" \
    "await timeout message"
  tw await "$id" --timeout 0
  expect_rc 4 "await --timeout 0 only looks"
  tw run sleep --arg seconds=60 --wait-timeout 0.2
  expect_rc 4 "run --wait-timeout"
  tw cancel "$id"
}

test_task_timeout() {
  tw run sleep --arg seconds=60 --timeout 0.2
  expect_rc 1 "a task past its own --timeout fails"
  expect_match "$ERR" 'failed: TimeoutError' "the task's timeout is a TimeoutError"
}

test_idempotency_key() {
  local key="key-$RANDOM-$$"
  new_task echo --arg value=1 --idempotency-key "$key"
  local first
  first=$ID
  tw create echo --arg value=2 --idempotency-key "$key"
  expect_eq "$OUT" "$first" "the same key answers with the first task"
}

test_gather_runs_concurrently() {
  new_task sleep --arg seconds=2
  local a b
  a=$ID
  new_task sleep --arg seconds=1
  b=$ID
  local start end elapsed
  start=$(now)
  tw gather "$a" "$b"
  end=$(now)
  expect_rc 0 "gather"
  elapsed=$(elapsed_between "$start" "$end")
  in_range "$elapsed" 1.5 2.9 || flunk "gather of 2 s and 1 s took ${elapsed}s, want about 2"
  local lines
  mapfile -t lines <<<"$OUT"
  expect_eq "${#lines[@]}" 3 "gather prints a header and two rows"
  expect_match "${lines[0]:-}" '^ID +KIND +STATE +RESULT$' "gather header"
  expect_match "${lines[1]:-}" "^$a +sleep +succeeded +null$" "gather row 1 (request order)"
  expect_match "${lines[2]:-}" "^$b +sleep +succeeded +null$" "gather row 2 (request order)"
  # Not a terminal: no progress bar, nothing on stderr.
  expect_eq "$ERR" "" "gather's stderr when it is not a terminal"
  tw --json gather "$b" "$a"
  expect_rc 0 "gather --json"
  py_check "$OUT" "[d['id'] for d in docs] == ['$b', '$a'] and all(d['state'] == 'TASK_STATE_SUCCEEDED' for d in docs)" \
    "gather --json: one task per line, in request order"
}

test_gather_failure() {
  new_task sleep --arg seconds=60
  local slow bad good
  slow=$ID
  new_task fail --arg message=bad
  bad=$ID
  tw gather "$slow" "$bad" --timeout 20
  expect_rc 1 "gather stops at the first failure"
  expect_one_line_error "gather failure"
  expect_match "$ERR" "^taskwire: task $bad failed: TaskFailure: bad$" "gather names the failure"
  expect_match "$OUT" "$slow +sleep +(pending|running)" "the others keep running"
  new_task echo --arg value=ok
  good=$ID
  tw gather "$bad" "$good" --return-exceptions
  expect_rc 0 "gather --return-exceptions"
  expect_match "$OUT" "$bad +fail +failed +TaskFailure: bad" "failed row"
  expect_match "$OUT" "$good +echo +succeeded +\"ok\"" "succeeded row"
  tw gather "$slow" --timeout 0.2
  expect_rc 4 "gather --timeout"
  expect_one_line_error "gather --timeout"
  tw cancel "$slow"
  tw gather "$slow" "$good"
  expect_rc 5 "gather of a cancelled task"
}

test_wait() {
  new_task sleep --arg seconds=0.2
  local fast slow
  fast=$ID
  new_task sleep --arg seconds=60
  slow=$ID
  tw wait "$slow" "$fast" --return-when first-completed --timeout 20
  expect_rc 0 "wait --return-when first-completed"
  expect_match "$OUT" "$fast +sleep +succeeded +null" "the first completed is done"
  expect_match "$OUT" "$slow +not done" "the other is not"
  tw --json wait "$slow" "$fast" --return-when first-completed
  expect_rc 0 "wait --json"
  py_check "$OUT" "[d['id'] for d in docs[0]['done']] == ['$fast'] and docs[0]['pending_ids'] == ['$slow']" \
    "wait --json: done and pending"
  tw wait "$slow" "$fast" --count 1
  expect_rc 0 "wait --count 1"
  tw wait "$slow" "$fast" --timeout 0.2
  expect_rc 4 "wait --timeout with the condition unmet"
  expect_one_line_error "wait --timeout"
  tw wait "$fast" --count 2
  expect_rc 2 "wait --count above the number of ids"
  expect_match "$ERR" '^taskwire: --count: ' "--count is named"
  tw cancel "$slow"
}

test_ls_filters() {
  local run="run$RANDOM$$"
  new_task echo --arg value=1 --label "run=$run" --name first
  local e1 e2 f1
  e1=$ID
  new_task echo --arg value=2 --label "run=$run" --label extra=yes
  e2=$ID
  new_task fail --arg message=x --label "run=$run"
  f1=$ID
  tw gather "$e1" "$e2" "$f1" --return-exceptions

  tw ls --label "run=$run"
  expect_rc 0 "ls --label"
  local lines
  mapfile -t lines <<<"$OUT"
  expect_eq "${#lines[@]}" 4 "ls: header and three rows"
  expect_match "${lines[0]:-}" '^ID +KIND +STATE +NAME +CREATED$' "ls header"
  expect_match "${lines[1]:-}" "^$e1 +echo +succeeded +first +[0-9]{4}-" "ls row 1 (oldest first)"
  expect_match "${lines[3]:-}" "^$f1 +fail +failed " "ls row 3"

  tw --json ls --label "run=$run" --kind echo
  expect_rc 0 "ls --kind --json"
  py_check "$OUT" "[d['id'] for d in docs] == ['$e1', '$e2']" "ls --kind echo"
  tw --json ls --label "run=$run" --state failed
  py_check "$OUT" "[d['id'] for d in docs] == ['$f1']" "ls --state failed"
  tw --json ls --label "run=$run" --state failed,succeeded
  py_check "$OUT" "len(docs) == 3" "ls --state, comma-separated"
  tw --json ls --label "run=$run" --state pending --state running
  py_check "$OUT" "docs == []" "ls --state repeated"
  tw --json ls --label "run=$run" --label extra=yes
  py_check "$OUT" "[d['id'] for d in docs] == ['$e2']" "ls with two labels"
  tw --json ls --label "run=$run" --limit 2
  py_check "$OUT" "[d['id'] for d in docs] == ['$e1', '$e2']" "ls --limit"
}

test_watch() {
  local run="watch$RANDOM$$"
  "$TASKWIRE" --server "$SERVER" watch --json --label "run=$run" >"$tmp/watch.out" 2>"$tmp/watch.err" &
  watch_pid=$!
  # The watch sees changes from the moment its call arrives: create tasks
  # until one shows up, which proves the stream is live (bounded).
  local deadline=$((SECONDS + 20)) id=""
  while ! grep -q TASK_STATE_SUCCEEDED "$tmp/watch.out" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      flunk "watch printed nothing within 20 s: $(cat "$tmp/watch.err")"
      break
    fi
    tw run echo --arg value=w --label "run=$run"
    sleep 0.1
  done
  kill "$watch_pid" 2>/dev/null
  wait "$watch_pid" 2>/dev/null
  watch_pid=""
  py_check "$(cat "$tmp/watch.out")" "all(set(d) >= {'task'} for d in docs) and any(d['task']['state'] == 'TASK_STATE_SUCCEEDED' and d['task']['result'] == 'w' and d['previous_state'] == 'TASK_STATE_RUNNING' for d in docs)" \
    "watch --json: one event per line"
  # For people: one line per change.
  "$TASKWIRE" --server "$SERVER" watch --label "run=$run" --state succeeded >"$tmp/watch.out" 2>"$tmp/watch.err" &
  watch_pid=$!
  deadline=$((SECONDS + 20))
  while ! grep -q succeeded "$tmp/watch.out" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      flunk "watch printed nothing within 20 s: $(cat "$tmp/watch.err")"
      break
    fi
    tw run echo --arg value=w --label "run=$run"
    sleep 0.1
  done
  kill "$watch_pid" 2>/dev/null
  wait "$watch_pid" 2>/dev/null
  watch_pid=""
  expect_match "$(head -n 1 "$tmp/watch.out")" \
    '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z  [0-9A-Z]{26}  echo  running -> succeeded  "w"$' \
    "watch line"
}

test_usage_errors() {
  # Each: the arguments, then what the one-line message must contain.
  local cases=(
    "frobnicate|^taskwire: unknown subcommand 'frobnicate'"
    "|^taskwire: missing subcommand"
    "await $UNKNOWN_ID --timeout abc|^taskwire: --timeout: must be a non-negative number of seconds, got 'abc'$"
    "await $UNKNOWN_ID --timeout -1|^taskwire: --timeout: "
    "gather $UNKNOWN_ID --timeout nan|^taskwire: --timeout: "
    "create sleep --timeout 0|^taskwire: --timeout: must be a positive number of seconds"
    "create echo --arg value|^taskwire: --arg: expected KEY=VALUE, got 'value'$"
    "create echo --arg =1|^taskwire: --arg: "
    "create echo --args {nope|^taskwire: --args: not valid JSON"
    "create echo --args [1] --arg a=1|^taskwire: --args: "
    "create echo --label nolabel|^taskwire: --label: "
    "ls --state sleeping|^taskwire: --state: unknown state 'sleeping'"
    "ls --limit 0|^taskwire: --limit: "
    "wait $UNKNOWN_ID --return-when soon|^taskwire: --return-when: "
    "get|^taskwire: ID is required"
    "get $UNKNOWN_ID extra|^taskwire: unexpected argument 'extra'"
    "get --bogus $UNKNOWN_ID|^taskwire: unknown option '--bogus'"
    "create|^taskwire: KIND is required"
  )
  local entry args pattern
  for entry in "${cases[@]}"; do
    args=${entry%%|*}
    pattern=${entry#*|}
    # Split on purpose, without globbing ("[1]" is an argument, not a pattern).
    set -f
    # shellcheck disable=SC2086
    tw $args
    set +f
    expect_rc 2 "taskwire $args"
    expect_one_line_error "taskwire $args"
    expect_match "$ERR" "$pattern" "taskwire $args: message"
  done
}

test_server_rejections() {
  tw create slep
  expect_rc 2 "an unknown kind (INVALID_ARGUMENT)"
  expect_one_line_error "unknown kind"
  expect_match "$ERR" "^taskwire: kind: unknown kind 'slep'" "the server's message"
  tw create sleep --arg seconds=-1
  expect_rc 2 "bad args (INVALID_ARGUMENT)"
  expect_match "$ERR" "^taskwire: args\.seconds: " "the server names the field"
  tw get "$UNKNOWN_ID"
  expect_rc 2 "an unknown id (NOT_FOUND)"
  expect_one_line_error "unknown id"
  expect_match "$ERR" "$UNKNOWN_ID" "NOT_FOUND names the id"
  tw get not-an-id
  expect_rc 2 "a malformed id"
  local big
  big=$(head -c 5000 /dev/zero | tr '\0' x)
  tw create echo --arg "value=$big"
  expect_rc 6 "args over the server's limit (RESOURCE_EXHAUSTED)"
  expect_one_line_error "RESOURCE_EXHAUSTED"
}

test_progress_bar_on_a_terminal() {
  if ! command -v script >/dev/null; then
    log "    (skipped: no 'script' to give the CLI a terminal)"
    return
  fi
  new_task sleep --arg seconds=0.3
  local a b
  a=$ID
  new_task sleep --arg seconds=0.6
  b=$ID
  # `script` runs the command on a pseudo-terminal: stderr is a TTY there.
  raw script -qec "'$TASKWIRE' --server '$SERVER' gather $a $b" /dev/null
  expect_rc 0 "gather on a terminal"
  expect_match "$OUT" $'\r''gather \[[#.]+\] 2/2 done' "the progress bar reaches 2/2"
  expect_match "$OUT" "$a +sleep +succeeded" "the results follow the bar"
}

test_watch_ends_when_server_stops() {
  local run="stop$RANDOM$$"
  "$TASKWIRE" --server "$SERVER" watch --label "run=$run" >"$tmp/watch.out" 2>"$tmp/watch.err" &
  watch_pid=$!
  local deadline=$((SECONDS + 20))
  while ! grep -q succeeded "$tmp/watch.out" 2>/dev/null && ((SECONDS <= deadline)); do
    tw run echo --arg value=1 --label "run=$run"
    sleep 0.1
  done
  stop_server
  expect_eq "$SERVER_RC" 0 "taskwired exits 0 on SIGTERM"
  deadline=$((SECONDS + 20))
  while kill -0 "$watch_pid" 2>/dev/null && ((SECONDS <= deadline)); do sleep 0.05; done
  wait "$watch_pid"
  RC=$?
  watch_pid=""
  OUT=$(cat "$tmp/watch.out")
  ERR=$(cat "$tmp/watch.err")
  expect_rc 3 "watch when the server stops"
  expect_one_line_error "watch when the server stops"
}

# --------------------------------------------------------------------------

run_test() {
  local name=$1
  current_ok=1
  log "RUN  $name"
  "$name"
  if ((current_ok)); then
    passed=$((passed + 1))
    log "PASS $name"
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    log "FAIL $name"
  fi
}

main() {
  [[ -x "$TASKWIRE" && -x "$TASKWIRED" ]] || {
    log "binaries not found: TASKWIRE=$TASKWIRE TASKWIRED=$TASKWIRED"
    exit 1
  }
  start_server
  local tests=(
    test_help_for_every_subcommand
    test_health
    test_unreachable_server
    test_server_env_variable
    test_echo_round_trip
    test_arg_values_parse_as_json_else_string
    test_sleep_and_wait_random
    test_failing_task
    test_cancel
    test_await_timeout
    test_task_timeout
    test_idempotency_key
    test_gather_runs_concurrently
    test_gather_failure
    test_wait
    test_ls_filters
    test_watch
    test_usage_errors
    test_server_rejections
    test_progress_bar_on_a_terminal
    # Last: it stops the server.
    test_watch_ends_when_server_stops
  )
  local only=${1:-}
  for name in "${tests[@]}"; do
    if [[ -z "$only" || "$name" == *"$only"* ]]; then run_test "$name"; fi
  done
  echo "$passed passed, $failed failed"
  if ((failed > 0)); then
    echo "failed: ${failed_names[*]}"
    exit 1
  fi
}

main "$@"
