// A uPlot time-series chart as a Preact component, resized with its container.
import uPlot from 'uplot';
import { html, useEffect, useRef } from '../lib/html.js';

const COLORS = ['#2456d3', '#d9480f', '#2b8a3e', '#7048e8', '#c2255c'];

/**
 * x: bucket start times (Unix seconds); lines: [{ label, values }]; format: how the legend shows a
 * value, axisFormat how the y axis does (short); yMax: the top of the y axis at least (1 for rates).
 */
export function Chart({ title, x, lines, format = (v) => String(v), axisFormat, yMax = 1, testid }) {
  const box = useRef(null);
  useEffect(() => {
    const el = box.current;
    const opts = {
      width: Math.max(el.clientWidth, 200),
      height: 190,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(yMax, (max || 0) * 1.1)] } },
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      series: [
        {},
        ...lines.map((line, i) => ({
          label: line.label,
          stroke: COLORS[i % COLORS.length],
          width: 2,
          points: { show: x.length < 40 },
          value: (u, v) => (v === null || v === undefined ? '–' : format(v)),
        })),
      ],
      axes: [
        { stroke: '#5b6475', grid: { stroke: '#eceff3' } },
        { stroke: '#5b6475', grid: { stroke: '#eceff3' }, size: 64, values: (u, vals) => vals.map((v) => (axisFormat || format)(v)) },
      ],
    };
    const plot = new uPlot(opts, [x, ...lines.map((l) => l.values)], el);
    const observer = new ResizeObserver(() => plot.setSize({ width: Math.max(el.clientWidth, 200), height: 190 }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [x, lines]);
  return html`<div class="panel chart" data-testid=${testid}>
    <h3 style="margin-top:0">${title}</h3>
    <div ref=${box}></div>
  </div>`;
}
