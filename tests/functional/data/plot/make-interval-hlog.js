// Writes an HdrHistogram interval log with hdr-histogram-js: 5 intervals
// of 1s, response values in microseconds.
const hdr = require("hdr-histogram-js");
let out = "";
const expect = [];
const writer = new hdr.HistogramLogWriter((l) => { out += l; });
writer.outputLogFormatVersion();
writer.outputStartTime(1764633600000);
writer.outputLegend();
let x = 12345;
function rnd() { x = (x * 1103515245 + 12345) % 2147483648; return x / 2147483648; }
for (let i = 0; i < 5; i++) {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 4294967295, numberOfSignificantValueDigits: 3 });
  h.startTimeStampMsec = 1764633600000 + i * 1000;
  h.endTimeStampMsec = h.startTimeStampMsec + 1000;
  h.tag = "response";
  const n = 200 + 100 * i;
  for (let k = 0; k < n; k++) h.recordValue(Math.floor(80 + 40 * i + 2000 * Math.pow(rnd(), 8) * (i + 1)));
  writer.outputIntervalHistogram(h, i, i + 1, 1000);
  expect.push({ end_s: i + 1, count: h.totalCount, p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99), max: h.maxValue });
}
process.stdout.write(out);
require("fs").writeFileSync(process.argv[2], JSON.stringify(expect, null, 1) + "\n");
