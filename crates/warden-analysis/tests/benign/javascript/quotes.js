// Prints the ticker and closing price of each row of a stock-quotes CSV.
const fs = require('fs');

const lines = fs.readFileSync('quotes.csv', 'utf8').trim().split('\n');
const header = lines[0].split(',');
const symbol = header.indexOf("Symbol");
const close = header.indexOf("Close");
if (symbol < 0 || close < 0) {
  console.error("missing column: Symbol or Close");
  process.exit(1);
}
const seen = new Set();
for (const line of lines.slice(1)) {
  const cells = line.split(',');
  if (!seen.has(cells[symbol])) {
    seen.add(cells[symbol]);
    console.log(`${cells[symbol]}\t${Number(cells[close]).toFixed(2)}`);
  }
}
console.log(`${seen.size} symbols; columns: ${header.join(", ")}; includes Symbol: ${header.includes("Symbol")}`);
