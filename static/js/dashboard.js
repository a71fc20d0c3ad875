/* The creator's dashboard: draws the charts with Apache ECharts (static/vendor/echarts) from
   the JSON the page carries in <script id="dashboard-data" type="application/json">.
   No inline script: this file is loaded with `defer`. Without JavaScript the page still shows
   every figure as numbers and tables; with it, the tables fold away under the charts. */
(function () {
  "use strict";

  var source = document.getElementById("dashboard-data");
  if (!source || typeof window.echarts === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var text = data.text;
  var lang = document.documentElement.lang || "en";
  var locale = lang.toLowerCase().indexOf("zh") === 0 ? "ZH" : "EN";
  var numbers = new Intl.NumberFormat(lang);
  var money;
  try {
    money = new Intl.NumberFormat(lang, { style: "currency", currency: data.currency });
  } catch (e) {
    money = numbers;
  }
  var monthFormat = new Intl.DateTimeFormat(lang, { year: "numeric", month: "short" });
  var dayFormat = new Intl.DateTimeFormat(lang, { month: "short", day: "numeric" });
  var narrow = function () { return window.matchMedia("(max-width: 767px)").matches; };

  var COLORS = {
    mrr: "#417690", new: "#2e9e5b", expansion: "#66c2a5", contraction: "#f0a04b",
    churned: "#d9534f", paying: "#417690", churn: "#d9534f", dau: "#79aec8", wau: "#417690",
    mau: "#205067", views: "#79aec8", posts: "#2e9e5b", comments: "#f0a04b", issued: "#2e9e5b",
    redeemed: "#f0a04b", taken_back: "#d9534f", signups: "#79aec8", paid: "#2e9e5b"
  };

  function isoDate(iso) {
    var parts = iso.split("-");
    return new Date(Number(parts[0]), Number(parts[1]) - 1, Number(parts[2] || 1));
  }
  function monthLabel(iso) { return monthFormat.format(isoDate(iso)); }
  function dayLabel(iso) { return dayFormat.format(isoDate(iso)); }

  function palette() {
    var style = getComputedStyle(document.body);
    var get = function (name, fallback) { return (style.getPropertyValue(name) || "").trim() || fallback; };
    return { fg: get("--body-fg", "#333"), quiet: get("--body-quiet-color", "#666"), line: get("--hairline-color", "#e8e8e8"), bg: get("--body-bg", "#fff") };
  }

  // Tooltips are drawn on the canvas ("richText"): ECharts' HTML tooltips carry style
  // attributes, which the Content-Security-Policy (style-src 'self') refuses.
  function tip(colors, extra) {
    return Object.assign({ renderMode: "richText", confine: true, backgroundColor: colors.bg, borderColor: colors.line, borderWidth: 1, textStyle: { color: colors.fg } }, extra || {});
  }

  function base(colors) {
    var small = narrow();
    return {
      textStyle: { color: colors.fg },
      grid: { left: small ? 4 : 12, right: small ? 4 : 16, top: 44, bottom: 8, containLabel: true },
      legend: { type: "scroll", top: 0, textStyle: { color: colors.fg }, pageTextStyle: { color: colors.fg } },
      tooltip: tip(colors, { trigger: "axis" })
    };
  }

  function axis(colors, extra) {
    var out = {
      axisLine: { lineStyle: { color: colors.quiet } },
      axisLabel: { color: colors.quiet, hideOverlap: true },
      splitLine: { lineStyle: { color: colors.line } }
    };
    for (var key in extra) { out[key] = extra[key]; }
    return out;
  }

  function monthAxis(colors) {
    return axis(colors, { type: "category", data: data.months, axisLabel: { color: colors.quiet, hideOverlap: true, formatter: monthLabel } });
  }

  function timeAxis(colors) {
    return axis(colors, { type: "time", axisLabel: { color: colors.quiet, hideOverlap: true, formatter: function (value) { return dayFormat.format(new Date(value)); } } });
  }

  function valueAxis(colors, format, extra) {
    return axis(colors, Object.assign({ type: "value", axisLabel: { color: colors.quiet, formatter: format } }, extra || {}));
  }

  var compact = new Intl.NumberFormat(lang, { notation: "compact", maximumFractionDigits: 1 });
  function compactNumber(value) { return compact.format(value); }
  function moneyValue(value) { return value === null || value === undefined ? "–" : money.format(value); }
  function countValue(value) { return value === null || value === undefined ? "–" : numbers.format(value); }

  var builders = {
    mrr: function (colors) {
      return Object.assign(base(colors), {
        legend: { show: false },
        xAxis: monthAxis(colors),
        yAxis: valueAxis(colors, compactNumber),
        series: [{
          name: text.mrr, type: "line", data: data.mrr.mrr, symbolSize: 6, lineStyle: { width: 3 },
          areaStyle: { opacity: 0.15 }, itemStyle: { color: COLORS.mrr }, tooltip: { valueFormatter: moneyValue }
        }],
        title: { text: text.mrr, left: 0, top: 0, textStyle: { color: colors.fg, fontSize: 13 } }
      });
    },
    movements: function (colors) {
      var d = data.mrr;
      var flow = function (key) {
        return { name: text[key], type: "bar", stack: "flow", data: d[key], itemStyle: { color: COLORS[key] }, tooltip: { valueFormatter: moneyValue } };
      };
      return Object.assign(base(colors), {
        xAxis: monthAxis(colors),
        yAxis: valueAxis(colors, compactNumber),
        series: [flow("new"), flow("expansion"), flow("contraction"), flow("churned")]
      });
    },
    paying: function (colors) {
      return Object.assign(base(colors), {
        xAxis: monthAxis(colors),
        yAxis: [valueAxis(colors, compactNumber), valueAxis(colors, function (v) { return v + "%"; }, { splitLine: { show: false } })],
        series: [
          { name: text.paying, type: "line", data: data.paying, itemStyle: { color: COLORS.paying }, tooltip: { valueFormatter: countValue } },
          { name: text.churn_rate, type: "bar", yAxisIndex: 1, data: data.churn, itemStyle: { color: COLORS.churn }, barMaxWidth: 18 }
        ]
      });
    },
    active: function (colors) {
      var a = data.active;
      var line = function (key, values, step) {
        return { name: text[key], type: "line", data: values, step: step || false, showSymbol: false, itemStyle: { color: COLORS[key] }, tooltip: { valueFormatter: countValue } };
      };
      return Object.assign(base(colors), {
        tooltip: tip(colors, { trigger: "axis" }),
        xAxis: timeAxis(colors),
        yAxis: valueAxis(colors, compactNumber),
        series: [line("dau", a.daily), line("wau", a.weekly, "start"), line("mau", a.monthly, "start")]
      });
    },
    content: function (colors) {
      var c = data.content;
      var pairs = function (values) { return c.days.map(function (day, i) { return [day, values[i]]; }); };
      return Object.assign(base(colors), {
        xAxis: timeAxis(colors),
        yAxis: [valueAxis(colors, compactNumber), valueAxis(colors, compactNumber, { splitLine: { show: false } })],
        series: [
          { name: text.views, type: "bar", data: pairs(c.views), itemStyle: { color: COLORS.views }, tooltip: { valueFormatter: countValue } },
          { name: text.posts, type: "line", yAxisIndex: 1, showSymbol: false, data: pairs(c.posts), itemStyle: { color: COLORS.posts }, tooltip: { valueFormatter: countValue } },
          { name: text.comments, type: "line", yAxisIndex: 1, showSymbol: false, data: pairs(c.comments), itemStyle: { color: COLORS.comments }, tooltip: { valueFormatter: countValue } }
        ]
      });
    },
    points: function (colors) {
      var p = data.points;
      var bar = function (key) { return { name: text[key], type: "bar", data: p[key], itemStyle: { color: COLORS[key] }, tooltip: { valueFormatter: countValue } }; };
      return Object.assign(base(colors), {
        xAxis: monthAxis(colors),
        yAxis: valueAxis(colors, compactNumber),
        series: [bar("issued"), bar("redeemed"), bar("taken_back")]
      });
    },
    cohorts: function (colors) {
      var c = data.cohorts;
      var offsets = [];
      for (var k = 0; k < c.offsets; k++) { offsets.push(text.month_n.replace("%(n)s", k)); }
      var small = narrow();
      return {
        textStyle: { color: colors.fg },
        grid: { left: 4, right: 8, top: 8, bottom: 56, containLabel: true },
        tooltip: tip(colors, {
          formatter: function (p) {
            var row = p.value[1];
            return monthLabel(c.months[row]) + " · " + offsets[p.value[0]] + "\n" + text.active_share + ": " + p.value[2] + "% (" + numbers.format(p.value[3]) + " / " + numbers.format(c.sizes[row]) + ")";
          }
        }),
        xAxis: axis(colors, { type: "category", data: offsets, splitArea: { show: true }, axisLabel: { color: colors.quiet, hideOverlap: true } }),
        yAxis: axis(colors, { type: "category", inverse: true, data: c.months, axisLabel: { color: colors.quiet, formatter: monthLabel } }),
        visualMap: { min: 0, max: 100, calculable: false, orient: "horizontal", left: "center", bottom: 0, itemHeight: small ? 120 : 200, text: ["100%", "0%"], textStyle: { color: colors.fg }, inRange: { color: ["#f3f7fa", "#79aec8", "#205067"] } },
        series: [{
          type: "heatmap", data: c.cells,
          label: { show: !small && c.offsets <= 13, formatter: function (p) { return Math.round(p.value[2]) + "%"; }, fontSize: 10 },
          emphasis: { itemStyle: { borderColor: colors.fg, borderWidth: 1 } }
        }]
      };
    },
    personas: function (colors) {
      var p = data.personas;
      return Object.assign(base(colors), {
        xAxis: axis(colors, { type: "category", data: p.runs, axisLabel: { color: colors.quiet, hideOverlap: true, formatter: dayLabel } }),
        yAxis: valueAxis(colors, compactNumber),
        tooltip: tip(colors, { trigger: "axis", valueFormatter: countValue }),
        series: p.series.map(function (s) {
          return { name: s.name, type: p.runs.length > 1 ? "line" : "bar", data: s.data, symbolSize: 6, connectNulls: false };
        })
      });
    },
    scores: function (colors) {
      return Object.assign(base(colors), {
        legend: { show: false },
        grid: { left: 4, right: 8, top: 16, bottom: 8, containLabel: true },
        xAxis: axis(colors, { type: "category", data: data.scores.bins, name: text.score, nameLocation: "middle", nameGap: 28, axisLabel: { color: colors.quiet, hideOverlap: true } }),
        yAxis: valueAxis(colors, compactNumber),
        series: [{ name: text.members, type: "bar", data: data.scores.counts, itemStyle: { color: COLORS.paying }, tooltip: { valueFormatter: countValue } }]
      });
    },
    "conv-items": function (colors) { return conversionChart(colors, data.conversions.items); },
    "conv-sources": function (colors) { return conversionChart(colors, data.conversions.sources); },
    top: function (colors) {
      return Object.assign(base(colors), {
        legend: { show: false },
        grid: { left: 4, right: 24, top: 8, bottom: 8, containLabel: true },
        xAxis: valueAxis(colors, compactNumber),
        yAxis: axis(colors, { type: "category", inverse: true, data: data.top.labels, axisLabel: { color: colors.quiet, width: narrow() ? 110 : 260, overflow: "truncate" } }),
        series: [{ name: text.views, type: "bar", data: data.top.views, itemStyle: { color: COLORS.views }, tooltip: { valueFormatter: countValue } }]
      });
    }
  };

  function conversionChart(colors, rows) {
    return Object.assign(base(colors), {
      grid: { left: 4, right: 24, top: 44, bottom: 8, containLabel: true },
      xAxis: valueAxis(colors, compactNumber, { minInterval: 1 }),
      yAxis: axis(colors, { type: "category", inverse: true, data: rows.labels, axisLabel: { color: colors.quiet, width: narrow() ? 100 : 180, overflow: "truncate" } }),
      series: [
        { name: text.signups, type: "bar", data: rows.signups, itemStyle: { color: COLORS.signups }, tooltip: { valueFormatter: countValue } },
        { name: text.paid, type: "bar", data: rows.paid, itemStyle: { color: COLORS.paid }, tooltip: { valueFormatter: countValue } }
      ]
    });
  }

  var charts = [];

  function draw() {
    var colors = palette();
    charts.forEach(function (chart) { chart.dispose(); });
    charts = [];
    document.querySelectorAll(".dash .chart[data-chart]").forEach(function (el) {
      var build = builders[el.getAttribute("data-chart")];
      if (!build) { return; }
      var chart = window.echarts.init(el, null, { locale: locale });
      chart.setOption(build(colors));
      charts.push(chart);
    });
  }

  document.documentElement.classList.add("dash-js");
  // The tables stay open without JavaScript; with charts drawn they fold away under them.
  document.querySelectorAll(".dash-panel").forEach(function (panel) {
    if (panel.querySelector(".chart[data-chart]")) {
      panel.querySelectorAll("details.dash-table").forEach(function (details) { details.open = false; });
    }
  });
  draw();

  var pending = null;
  var resize = function () {
    if (pending) { window.cancelAnimationFrame(pending); }
    pending = window.requestAnimationFrame(function () { charts.forEach(function (chart) { chart.resize(); }); });
  };
  if (typeof window.ResizeObserver === "function") {
    var observer = new window.ResizeObserver(resize);
    document.querySelectorAll(".dash .chart[data-chart]").forEach(function (el) { observer.observe(el); });
  } else {
    window.addEventListener("resize", resize);
  }
  // The admin's light/dark toggle sets data-theme on <html>: redraw in the new colours.
  new MutationObserver(draw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", draw);
})();
