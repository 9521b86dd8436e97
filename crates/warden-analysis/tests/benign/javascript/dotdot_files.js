const fs = require("fs"), path = require("path");
fs.mkdirSync("data", { recursive: true });
fs.writeFileSync("data/x.json", JSON.stringify({ a: 1 }));
console.log(JSON.parse(fs.readFileSync("./data/../data/x.json", "utf8")));
console.log(fs.readFileSync(path.join(__dirname, "data", "x.json"), "utf8"));
console.log(fs.existsSync("/work/sub/file"));
