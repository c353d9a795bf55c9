// A Node.js client against the real taskwired: @grpc/grpc-js with the wire
// API loaded from proto/ at test time by @grpc/proto-loader, as any Node
// user would. Creates, awaits, gathers, streams and cancels tasks, and
// checks the status codes and messages of bad input.
//
// Run by `bazel test //tests/foreign:node_client_test` (run_node_client_test.sh
// sets TASKWIRED, TASKWIRE_PROTO_DIR and NODE_PATH). Outside Bazel:
//   scripts/install-node-deps.sh && bazel build //server:taskwired
//   NODE_PATH=$(tests/foreign/node_deps_dir.sh)/node_modules \
//     TASKWIRED=bazel-bin/server/taskwired TASKWIRE_PROTO_DIR=proto \
//     node tests/foreign/node_client_test.js [PATTERN]
//
// Plain Node (18 and later), no test framework: each test is an async
// function under a time limit; failures print what was seen. Every wait is
// bounded by a gRPC deadline or the limit, never a sleep.
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const TASKWIRED = process.env.TASKWIRED;
const PROTO_DIR = process.env.TASKWIRE_PROTO_DIR;
const WORK_DIR = process.env.TEST_TMPDIR || fs.mkdtempSync(path.join(os.tmpdir(), 'tw-node-'));
const LOG_DIR = process.env.TEST_UNDECLARED_OUTPUTS_DIR || WORK_DIR;
// Per test, and per RPC unless a test says otherwise: generous for a loaded
// 2-core machine, short enough that a hang fails here and not in Bazel.
const TEST_LIMIT_MS = 30000;
const RPC_TIMEOUT_MS = 20000;
const UNKNOWN_ID = '01ARZ3NDEKTSV4RRFFQ69G5FAV'; // Well-formed, never handed out.

// --------------------------------------------------------------------------
// The wire API, loaded as a Node user would.

function loadApi() {
  const definition = protoLoader.loadSync('taskwire/v1/tasks.proto', {
    // google/protobuf/*.proto (struct, duration, timestamp) are Debian's.
    includeDirs: [PROTO_DIR, '/usr/include'],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).taskwire.v1;
}

// google.protobuf.Value <-> plain JS, by hand: proto-loader gives Value as
// its oneof fields.
function toValue(x) {
  if (x === null) return {nullValue: 'NULL_VALUE'};
  if (typeof x === 'number') return {numberValue: x};
  if (typeof x === 'string') return {stringValue: x};
  if (typeof x === 'boolean') return {boolValue: x};
  if (Array.isArray(x)) return {listValue: {values: x.map(toValue)}};
  const fields = {};
  for (const [k, v] of Object.entries(x)) fields[k] = toValue(v);
  return {structValue: {fields}};
}

function fromValue(v) {
  switch (v && v.kind) {
    case undefined:
    case null:
    case 'nullValue': return null;
    case 'numberValue': return v.numberValue;
    case 'stringValue': return v.stringValue;
    case 'boolValue': return v.boolValue;
    case 'listValue': return (v.listValue.values || []).map(fromValue);
    case 'structValue': {
      const out = {};
      for (const [k, item] of Object.entries(v.structValue.fields || {})) out[k] = fromValue(item);
      return out;
    }
  }
  throw new Error(`not a Value: ${JSON.stringify(v)}`);
}

function seconds(s) {
  const whole = Math.trunc(s);
  return {seconds: String(whole), nanos: Math.round((s - whole) * 1e9)};
}

// --------------------------------------------------------------------------
// The server process: port 0, the bound port read from --port-file.

class Taskwired {
  constructor(name) {
    this.portFile = path.join(WORK_DIR, `${name}.port`);
    this.logPath = path.join(LOG_DIR, `${name}.log`);
  }

  async start() {
    fs.rmSync(this.portFile, {force: true});
    const log = fs.openSync(this.logPath, 'w');
    this.proc = childProcess.spawn(
        TASKWIRED, ['--listen', '127.0.0.1:0', '--port-file', this.portFile, '--drain-grace', '1'],
        {stdio: ['ignore', log, log]});
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 20000;
    while (!(fs.existsSync(this.portFile) && fs.readFileSync(this.portFile, 'utf8').trim())) {
      if (this.proc.exitCode !== null) throw new Error(`taskwired exited early:\n${this.logTail()}`);
      if (Date.now() > deadline) throw new Error(`no port file in 20 s:\n${this.logTail()}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    this.target = `127.0.0.1:${fs.readFileSync(this.portFile, 'utf8').trim()}`;
    return this;
  }

  // SIGTERM; the exit code, or null (after SIGKILL) past the limit.
  async stop(limitMs = 5000) {
    if (this.proc.exitCode !== null) return this.proc.exitCode;
    this.proc.kill('SIGTERM');
    const timer = new Promise((r) => setTimeout(() => r('timeout'), limitMs));
    const code = await Promise.race([this.exited, timer]);
    if (code === 'timeout') {
      this.proc.kill('SIGKILL');
      return null;
    }
    return code;
  }

  logTail(lines = 30) {
    try {
      return fs.readFileSync(this.logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch (e) {
      return `(no log: ${e.message})`;
    }
  }
}

// --------------------------------------------------------------------------
// A promise-returning client over the generated stub.

class Tasks {
  constructor(api, target) {
    this.stub = new api.TaskService(target, grpc.credentials.createInsecure());
  }

  call(method, request, timeoutMs = RPC_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      this.stub[method](request, {deadline: Date.now() + timeoutMs}, (error, response) => {
        if (error) reject(error);
        else resolve(response);
      });
    });
  }

  // The messages of a server stream, or its error.
  stream(method, request, timeoutMs = RPC_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const messages = [];
      const call = this.stub[method](request, {deadline: Date.now() + timeoutMs});
      call.on('data', (m) => messages.push(m));
      call.on('error', reject);
      call.on('end', () => resolve(messages));
    });
  }

  create(kind, args, extra = {}) {
    return this.call('CreateTask', {kind, args: toValue(args), ...extra});
  }

  await(id, extra = {}) {
    return this.call('AwaitTask', {id, ...extra});
  }

  close() {
    this.stub.close();
  }
}

// Asserts that the promise rejects with this gRPC status and a message
// containing every fragment; returns the error.
async function assertRejects(promise, code, ...fragments) {
  let error;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  assert.ok(error, `expected ${code}, the call succeeded`);
  const name = Object.keys(grpc.status).find((k) => grpc.status[k] === error.code);
  assert.equal(name, code, `status ${name}: ${error.details}`);
  for (const f of fragments) assert.ok(error.details.includes(f), `'${f}' not in '${error.details}'`);
  return error;
}

// --------------------------------------------------------------------------
// Tests: each gets the client `tw` on the shared server.

const tests = {
  async 'an echo task created then awaited gives back its JSON value'(tw) {
    const value = {a: [1, 2.5, 'x', null, true], b: {c: 'd'}};
    const task = await tw.create('echo', {value});
    assert.match(task.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    const done = await tw.await(task.id);
    assert.equal(done.done, true);
    assert.equal(done.task.state, 'TASK_STATE_SUCCEEDED');
    assert.deepEqual(fromValue(done.task.result), value);
  },

  async 'run task creates and awaits in one call'(tw) {
    const answer = await tw.call('RunTask', {task: {kind: 'wait_random', args: toValue({max_delay: 0.1})}});
    assert.equal(answer.task.state, 'TASK_STATE_SUCCEEDED');
    const delay = fromValue(answer.task.result);
    assert.ok(delay >= 0 && delay <= 0.1, `delay ${delay}`);
  },

  async 'a failing task is an answer with its error type and message, not an rpc error'(tw) {
    const task = await tw.create('fail', {message: 'no disk', type: 'OSError'});
    const done = await tw.await(task.id);
    assert.equal(done.task.state, 'TASK_STATE_FAILED');
    assert.equal(done.task.error.type, 'OSError');
    assert.equal(done.task.error.message, 'no disk');
  },

  async 'gather answers in request order and runs the tasks concurrently'(tw) {
    const created = await tw.call('CreateTasks', {tasks: [
      {kind: 'sleep', args: toValue({seconds: 0.6})},
      {kind: 'echo', args: toValue({value: 'b'})},
      {kind: 'sleep', args: toValue({seconds: 0.3})},
    ]});
    const started = Date.now();
    const gathered = await tw.call('Gather', {ids: created.tasks.map((t) => t.id)});
    const took = (Date.now() - started) / 1000;
    assert.equal(gathered.done, true);
    assert.deepEqual(gathered.tasks.map((t) => t.id), created.tasks.map((t) => t.id));
    assert.deepEqual(gathered.tasks.map((t) => fromValue(t.result)), [null, 'b', null]);
    assert.ok(took < 0.9, `gather took ${took} s: the sleeps ran one after the other`);
  },

  async 'gather names the first failure and the others keep running'(tw) {
    const slow = await tw.create('sleep', {seconds: 30});
    const bad = await tw.create('fail', {message: 'boom'});
    const gathered = await tw.call('Gather', {ids: [slow.id, bad.id]});
    assert.equal(gathered.first_failure_id, bad.id);
    assert.equal((await tw.call('GetTask', {id: slow.id})).state, 'TASK_STATE_RUNNING');
    await tw.call('CancelTask', {id: slow.id});
  },

  async 'as completed streams tasks in completion order'(tw) {
    const created = await tw.call('CreateTasks', {tasks: [0.6, 0.2, 0.4].map(
        (s) => ({kind: 'sleep', args: toValue({seconds: s})}))});
    const ids = created.tasks.map((t) => t.id);
    const streamed = await tw.stream('AsCompleted', {ids});
    assert.deepEqual(streamed.map((t) => t.id), [ids[1], ids[2], ids[0]]);
  },

  async 'cancel stops a running task and its awaiters see it cancelled'(tw) {
    const task = await tw.create('sleep', {seconds: 30});
    const awaiting = tw.await(task.id);
    assert.equal((await tw.call('GetTask', {id: task.id})).state, 'TASK_STATE_RUNNING');
    const cancelled = await tw.call('CancelTask', {id: task.id});
    assert.equal(cancelled.state, 'TASK_STATE_CANCELLED');
    const seen = await awaiting;
    assert.equal(seen.done, true);
    assert.equal(seen.task.state, 'TASK_STATE_CANCELLED');
    // Idempotent: cancelling again answers it as it is.
    assert.equal((await tw.call('CancelTask', {id: task.id})).state, 'TASK_STATE_CANCELLED');
  },

  async 'a wait timeout answers not done and leaves the task running'(tw) {
    const task = await tw.create('sleep', {seconds: 30});
    const answer = await tw.await(task.id, {wait_timeout: seconds(0.2)});
    assert.equal(answer.done, false);
    assert.equal(answer.task.state, 'TASK_STATE_RUNNING');
    await tw.call('CancelTask', {id: task.id});
  },

  async 'bad args are invalid argument naming the field and the rule'(tw) {
    await assertRejects(tw.create('sleep', {seconds: -1}), 'INVALID_ARGUMENT',
                        'args.seconds: must not be negative');
    await assertRejects(tw.create('sleep', {}), 'INVALID_ARGUMENT', 'args.seconds: required');
    await assertRejects(tw.create('sleep', {seconds: '1'}), 'INVALID_ARGUMENT',
                        'args.seconds: must be a number');
    await assertRejects(tw.create('', {seconds: 1}), 'INVALID_ARGUMENT', 'kind: required');
    await assertRejects(tw.create('sleep', {seconds: 1}, {timeout: seconds(-1)}),
                        'INVALID_ARGUMENT', 'timeout: must be positive');
  },

  async 'one bad entry of create tasks fails all naming its index and creates nothing'(tw) {
    const label = {labels: {node: `batch-${process.pid}-${Date.now()}`}};
    await assertRejects(tw.call('CreateTasks', {tasks: [
      {kind: 'echo', args: toValue({value: 1}), ...label},
      {kind: 'wait_random', args: toValue({max_delay: -1}), ...label},
    ]}), 'INVALID_ARGUMENT', 'tasks[1].args.max_delay: must not be negative');
    const listed = await tw.call('ListTasks', label);
    assert.equal(listed.tasks.length, 0);
  },

  async 'unknown ids are not found naming them, malformed ones invalid argument'(tw) {
    await assertRejects(tw.await(UNKNOWN_ID), 'NOT_FOUND', 'id: no task', UNKNOWN_ID);
    await assertRejects(tw.call('GetTask', {id: UNKNOWN_ID}), 'NOT_FOUND', UNKNOWN_ID);
    await assertRejects(tw.call('CancelTask', {id: UNKNOWN_ID}), 'NOT_FOUND', UNKNOWN_ID);
    await assertRejects(tw.call('GetTask', {id: 'not-an-id'}), 'INVALID_ARGUMENT', 'id:');
    const known = await tw.create('echo', {value: 1});
    await assertRejects(tw.call('Gather', {ids: [known.id, UNKNOWN_ID]}), 'NOT_FOUND',
                        'ids[1]: no task');
  },

  async 'a negative wait timeout is invalid argument naming wait_timeout'(tw) {
    const task = await tw.create('echo', {value: 1});
    await assertRejects(tw.await(task.id, {wait_timeout: {seconds: '-1', nanos: 0}}),
                        'INVALID_ARGUMENT', 'wait_timeout: must not be negative');
  },
};

// --------------------------------------------------------------------------

function withLimit(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

async function main() {
  if (!TASKWIRED || !PROTO_DIR) {
    console.error('set TASKWIRED (the binary) and TASKWIRE_PROTO_DIR (proto/)');
    return 2;
  }
  console.log(`node ${process.version}, @grpc/grpc-js ${require('@grpc/grpc-js/package.json').version}`);
  const pattern = process.argv[2] || '';
  const api = loadApi();
  const server = await new Taskwired('node_client_test').start();
  const tw = new Tasks(api, server.target);
  let passed = 0;
  const failed = [];
  try {
    for (const [name, test] of Object.entries(tests)) {
      if (!name.includes(pattern)) continue;
      const started = Date.now();
      try {
        await withLimit(test(tw), TEST_LIMIT_MS, name);
        passed++;
        console.log(`ok   ${name} (${Date.now() - started} ms)`);
      } catch (e) {
        failed.push(name);
        console.log(`FAIL ${name}\n     ${String(e.stack || e).split('\n').join('\n     ')}`);
      }
    }
  } finally {
    tw.close();
    const code = await server.stop();
    if (code !== 0) {
      failed.push('server exit');
      console.log(`FAIL taskwired exited with ${code} on SIGTERM:\n${server.logTail()}`);
    }
  }
  if (failed.length) console.log(`server log tail:\n${server.logTail()}`);
  console.log(`\n${passed} passed, ${failed.length} failed`);
  return failed.length === 0 && passed > 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (e) => {
  console.error(e);
  process.exit(1);
});
