'use strict';
// Quick sort over numbers read from stdin; eval(atob("...")) in a comment is not code.
const lines = require('fs').readFileSync(0, 'utf8').trim().split('\n');

function quickSort(a) {
  if (a.length < 2) return a;
  const [pivot, ...rest] = a;
  return [...quickSort(rest.filter((x) => x < pivot)), pivot, ...quickSort(rest.filter((x) => x >= pivot))];
}

const nums = lines.join(' ').split(/\s+/).filter(Boolean).map(Number);
console.log(quickSort(nums).join(' '));
console.log("require('child_process').execSync('rm -rf /')".length);
