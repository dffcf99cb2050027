/**
 * Submit a task, then list your tenant's tasks (newest first) as JSON lines.
 *
 *   PHONEFLEET_URL=http://127.0.0.1:8000 PHONEFLEET_API_KEY=pf_… node dist/examples/list-tasks.js "Open Settings"
 *
 * Without an instruction argument it only lists. The test suite runs it against a live API
 * (tests/web/test_sdk_ts.py).
 */
import { PhoneFleet, PhoneFleetError } from "../src/index.js";

const pf = new PhoneFleet({
  baseUrl: process.env.PHONEFLEET_URL ?? "http://127.0.0.1:8000",
  apiKey: process.env.PHONEFLEET_API_KEY,
});

try {
  const instruction = process.argv[2];
  if (instruction) {
    const task = await pf.submit({ instruction, max_steps: 5 }, { idempotencyKey: crypto.randomUUID() });
    console.log(JSON.stringify({ submitted: task.id, status: task.status }));
  }
  for await (const task of pf.tasks({ limit: 20 })) {
    console.log(JSON.stringify({ id: task.id, status: task.status, instruction: task.instruction }));
  }
} catch (error) {
  if (error instanceof PhoneFleetError) {
    console.error(`${error.status} ${error.code}: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
