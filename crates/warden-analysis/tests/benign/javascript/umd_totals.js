// Sums a row's quarterly columns; works in a browser and in Node (the UMD idiom).
// In a browser the root is `window`; in Node it is `global`.
const root = typeof window !== 'undefined' ? window : global;
root.QUARTERS = 4;

const row = { q1: 10, q2: 20, q3: 30, q4: 40 };
let total = 0;
for (let i = 1; i <= root.QUARTERS; i++) {
  total += row["q" + i];
}

function run(items, process) {
  return items.map(process);
}
const keymap = { save: { binding: 'Ctrl+S' }, open: { binding: 'Ctrl+O' } };
const steps = run(['load', 'clean'], (s) => s.toUpperCase());
console.log(total, steps.join(' '), keymap.save.binding, keymap.open[`bin` + `ding`]);
