// A program split over files, loaded the way Node projects do.
const path = require('path');
const plugin = require(path.join(__dirname, 'plugins', 'format'));
const math = require('./lib/' + 'math');
const util = require(__dirname + '/util');

console.log(plugin.name, math.add(1, 2), util.version);
