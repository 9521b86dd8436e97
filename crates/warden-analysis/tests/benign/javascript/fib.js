const memo = new Map();
function fib(n) {
  if (n < 2) return BigInt(n);
  if (memo.has(n)) return memo.get(n);
  const v = fib(n - 1) + fib(n - 2);
  memo.set(n, v);
  return v;
}

let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const n = parseInt(input, 10) || 10;
  for (let i = 0; i <= n; i++) console.log(`fib(${i}) = ${fib(i)}`);
});
