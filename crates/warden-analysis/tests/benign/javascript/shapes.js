class Shape {
  constructor(name) { this.name = name; }
  area() { return 0; }
  toString() { return `${this.name} with area ${this.area().toFixed(2)}`; }
}

class Circle extends Shape {
  constructor(r) { super('circle'); this.r = r; }
  area() { return Math.PI * this.r ** 2; }
}

class Rect extends Shape {
  constructor(w, h) { super('rect'); this.w = w; this.h = h; }
  area() { return this.w * this.h; }
}

const shapes = [new Circle(1), new Rect(2, 3), new Circle(0.5)];
shapes.sort((a, b) => a.area() - b.area());
for (const s of shapes) console.log(String(s));
const counts = {};
for (const ch of 'hello world') counts[ch] = (counts[ch] || 0) + 1;
console.log(JSON.stringify(counts));
let i = 0;
while (true) { if (++i > 3) break; }
const re = /o/g;
for (;;) {
  const m = re.exec('foo boo');
  if (!m) break;
}
