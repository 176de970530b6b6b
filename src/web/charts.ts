// Small bar charts drawn on the server as SVG (no script, no CDN): per-hour counts, stacked by series, with a title, a summary and a visually-hidden table for screen readers.
import { html, type SafeHtml } from './html.js';

export interface ChartSeries {
  /** The series in a word or two, e.g. "sent": named before its count in the summary, and the column heading of the table. */
  label: string;
  values: readonly number[];
  /** The CSS class that colours its bars (mailgate.css: .series-ok, .series-bad, .series-info, .series-warn). */
  tone: 'ok' | 'bad' | 'info' | 'warn';
}

export interface BarChartInput {
  /** A short id (letters, digits, '-') for the chart's element ids and its data-chart attribute. */
  id: string;
  title: string;
  /** The start of each hour (ISO 8601, UTC), as many as each series has values. */
  hours: readonly string[];
  series: readonly ChartSeries[];
  /** A level (e.g. the outbox depth) rather than events: the summary names the latest value and the peak instead of totals. */
  level?: boolean;
}

const WIDTH = 480;
const HEIGHT = 150;
const LEFT = 30;
const TOP = 8;
const BOTTOM = 22;
const PLOT_HEIGHT = HEIGHT - TOP - BOTTOM;

const hourLabel = (iso: string) => `${iso.slice(11, 16)} UTC`;

/** 1, 2, 5, 10, 20, 50…: a round top for the axis, at least the largest value. */
function niceMax(max: number): number {
  if (max <= 1) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * magnitude >= max) return step * magnitude;
  return 10 * magnitude;
}

/** The chart's summary in words: totals (or, for a level, the latest value and the peak) and the busiest hour. */
export function chartSummary(input: BarChartInput): string {
  const stacked = input.hours.map((_, i) => input.series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const peak = Math.max(0, ...stacked);
  const peakAt = stacked.indexOf(peak);
  if (input.level) {
    const latest = stacked[stacked.length - 1] ?? 0;
    return `Now ${input.series.map((s) => s.label).join(' or ')}: ${latest}; ${peak === 0 ? 'none in the last 24 hours' : `at most ${peak}, at the end of the hour from ${hourLabel(input.hours[peakAt]!)}`}.`;
  }
  const totals = input.series.map((s) => `${s.label} ${s.values.reduce((a, b) => a + b, 0)}`).join(', ');
  return `In the last 24 hours: ${totals}${peak > 0 ? `; busiest hour from ${hourLabel(input.hours[peakAt]!)} with ${peak}` : ''}.`;
}

export function barChart(input: BarChartInput): SafeHtml {
  const { id, hours, series } = input;
  const stacked = hours.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const top = niceMax(Math.max(0, ...stacked));
  const slot = (WIDTH - LEFT) / hours.length;
  const barWidth = Math.max(2, slot - 3);
  const y = (value: number) => TOP + PLOT_HEIGHT - (value / top) * PLOT_HEIGHT;
  const summary = chartSummary(input);

  const bars = hours.map((hour, i) => {
    let base = 0;
    const x = (LEFT + i * slot + (slot - barWidth) / 2).toFixed(1);
    return series.map((s) => {
      const value = s.values[i] ?? 0;
      if (value === 0) return html``;
      const y0 = y(base + value);
      const h = y(base) - y0;
      base += value;
      return html`<rect class="series-${s.tone}" x="${x}" y="${y0.toFixed(1)}" width="${barWidth.toFixed(1)}" height="${h.toFixed(1)}"><title>${hourLabel(hour)}: ${value} ${s.label}</title></rect>`;
    });
  });
  // Every sixth hour is labelled on the x axis.
  const ticks = hours.map((hour, i) => (i % 6 === 0 ? html`<text class="axis" x="${(LEFT + i * slot).toFixed(1)}" y="${HEIGHT - 6}">${hour.slice(11, 16)}</text>` : html``));

  return html`<figure class="chart" data-chart="${id}">
<figcaption><span class="chart-title">${input.title}</span> <span class="chart-summary">${summary}</span></figcaption>
<svg class="chart-svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-labelledby="${id}-title ${id}-desc" preserveAspectRatio="xMidYMid meet">
<title id="${id}-title">${input.title}, per hour, last 24 hours</title>
<desc id="${id}-desc">${summary}</desc>
<line class="grid" x1="${LEFT}" x2="${WIDTH}" y1="${TOP}" y2="${TOP}"></line>
<line class="baseline" x1="${LEFT}" x2="${WIDTH}" y1="${TOP + PLOT_HEIGHT}" y2="${TOP + PLOT_HEIGHT}"></line>
<text class="axis" x="${LEFT - 4}" y="${TOP + 4}" text-anchor="end">${top}</text>
<text class="axis" x="${LEFT - 4}" y="${TOP + PLOT_HEIGHT}" text-anchor="end">0</text>
${bars}
${ticks}
</svg>
${series.length > 1 ? html`<ul class="chart-legend">${series.map((s) => html`<li><span class="swatch series-${s.tone}" aria-hidden="true"></span>${s.label}</li>`)}</ul>` : ''}
<div class="visually-hidden"><table>
<caption>${input.title} per hour (UTC), last 24 hours</caption>
<thead><tr><th scope="col">Hour from</th>${series.map((s) => html`<th scope="col">${s.label}</th>`)}</tr></thead>
<tbody>${hours.map((hour, i) => html`<tr><th scope="row">${hourLabel(hour)}</th>${series.map((s) => html`<td>${s.values[i] ?? 0}</td>`)}</tr>`)}</tbody>
</table></div>
</figure>`;
}
