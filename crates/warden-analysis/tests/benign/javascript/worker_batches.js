// Starts one worker per batch until the input runs out.
const { Worker } = require('worker_threads');

const items = [3, 1, 4, 1, 5, 9, 2, 6];
let next = 0;
while (true) {
  const batch = items.slice(next, next + 3);
  if (batch.length === 0) {
    break;
  }
  new Worker('./square.js', { workerData: batch });
  next += 3;
}
