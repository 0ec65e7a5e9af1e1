// hdr_check.js: read echoload's histograms with HdrHistogram.js, an
// independent implementation, and print what it finds as JSON, for
// test_multihost.py to compare with echoload's own figures.
//   node hdr_check.js hlog FILE   every series of an interval log, added
//   node hdr_check.js json FILE   the "histograms" of a JSON result
"use strict";
const fs = require("fs");
const hdr = require("hdr-histogram-js");

const PERCENTILES = [50, 90, 99, 99.9, 99.99, 100];

function summary(h) {
  const p = {};
  for (const q of PERCENTILES) p[q] = h.getValueAtPercentile(q);
  return { count: h.totalCount, percentiles: p, max: h.maxValue,
    min: h.minNonZeroValue };
}

function fromLog(text) {
  const reader = new hdr.HistogramLogReader(text);
  const sums = {};
  const intervals = {};
  let h;
  while ((h = reader.nextIntervalHistogram()) !== null) {
    if (!sums[h.tag]) {
      sums[h.tag] = hdr.build({ lowestDiscernibleValue: 1,
        highestTrackableValue: 4294967295, numberOfSignificantValueDigits: 3 });
      intervals[h.tag] = [];
    }
    sums[h.tag].add(h);
    intervals[h.tag].push({ start_ms: h.startTimeStampMsec,
      end_ms: h.endTimeStampMsec, count: h.totalCount });
  }
  const out = {};
  for (const tag of Object.keys(sums))
    out[tag] = Object.assign(summary(sums[tag]), { intervals: intervals[tag] });
  return out;
}

function fromJson(text) {
  const res = JSON.parse(text);
  const out = {};
  for (const [name, b64] of Object.entries(res.histograms))
    out[name] = summary(hdr.decodeFromCompressedBase64(b64));
  return out;
}

const [kind, file] = process.argv.slice(2);
const text = fs.readFileSync(file, "utf8");
process.stdout.write(JSON.stringify(kind === "hlog" ? fromLog(text) :
  fromJson(text)) + "\n");
