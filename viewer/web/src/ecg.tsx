// The ECG viewer: a 12-lead page at true scale (25 mm/s, 10 mm/mV on a 1 mm / 5 mm grid), a
// 10-second rhythm strip of II, zoom, calipers for intervals and amplitudes, and the hub's
// automated measurements and flags beside it.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, qido, tagString } from './api';
import { currentLang, t } from './i18n';

interface Samples {
  samplingHz: number;
  leads: { lead: string; samples: number[] }[];
}
export interface Flag {
  code: string;
  text: string;
  textZh?: string;
  evidence?: string;
}

// A statement in the reader's language.
export function statementText(f: Flag): string {
  return currentLang() === 'en' ? f.text : f.textZh || f.text;
}
export interface EcgAnalysis {
  heartRate_bpm: number | null;
  rr_ms: number | null;
  pr_ms: number | null;
  qrs_ms: number | null;
  qt_ms: number | null;
  qtcBazett_ms: number | null;
  qtcFridericia_ms: number | null;
  axis_deg: number | null;
  flags: Flag[];
  note: string;
}

const STANDARD = [
  ['I', 'aVR', 'V1', 'V4'],
  ['II', 'aVL', 'V2', 'V5'],
  ['III', 'aVF', 'V3', 'V6'],
];
const MM_PER_S = 25;
const MM_PER_MV = 10;
const ROW_MM = 25;
const CAL_MM = 5; // the 1 mV calibration pulse and its margin at each row's start
const ECG_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.9.1.';

// The px per mm the screen is taken to have: CSS says 96 px per inch; a reader can calibrate
// against a ruler (stored per browser).
function pxPerMm(): number {
  const stored = Number(localStorage.getItem('yilian.ecg.pxPerMm'));
  return stored > 0 ? stored : 96 / 25.4;
}

export async function ecgInstance(study: string): Promise<string> {
  const list = await qido(`/dicom-web/studies/${study}/instances`);
  const ecg = list.find((d) => tagString(d, '00080016').startsWith(ECG_SOP_CLASS));
  if (!ecg) throw new Error('no ECG waveform in this study');
  return tagString(ecg, '00080018');
}

export function EcgViewer(props: { instance: string }) {
  const [samples, setSamples] = useState<Samples | null>(null);
  const [analysis, setAnalysis] = useState<EcgAnalysis | null>(null);
  const [zoom, setZoom] = useState(1);
  const [caliper, setCaliper] = useState<{ x0: number; y0: number; x1: number; y1: number } | null>(
    null,
  );
  const [error, setError] = useState('');
  const [calibrating, setCalibrating] = useState(false);
  const [measured, setMeasured] = useState('');
  const [pxMm, setPxMm] = useState(pxPerMm());
  const canvas = useRef<HTMLCanvasElement>(null);

  useEffect(() => {
    Promise.all([
      api<Samples>('GET', `/api/ecg/${props.instance}/samples`),
      api<EcgAnalysis>('GET', `/api/ecg/${props.instance}`),
    ])
      .then(([s, a]) => {
        setSamples(s);
        setAnalysis(a);
      })
      .catch((e) => setError(String(e)));
  }, [props.instance]);

  const scale = pxMm * zoom; // CSS px per mm
  const byName = new Map(samples?.leads.map((l) => [l.lead.toUpperCase(), l]) ?? []);
  const standard = STANDARD.flat().every((n) => byName.has(n.toUpperCase()));
  const seconds = samples ? (samples.leads[0]?.samples.length ?? 0) / samples.samplingHz : 0;
  const rows = standard ? 4 : (samples?.leads.length ?? 0);
  const widthMm = CAL_MM + Math.max(10, seconds) * MM_PER_S;
  const heightMm = rows * ROW_MM;

  useEffect(() => {
    const c = canvas.current;
    if (!c || !samples) return;
    const dpr = window.devicePixelRatio;
    c.style.width = `${widthMm * scale}px`;
    c.style.height = `${heightMm * scale}px`;
    c.width = Math.round(widthMm * scale * dpr);
    c.height = Math.round(heightMm * scale * dpr);
    const ctx = c.getContext('2d')!;
    const k = scale * dpr; // device px per mm
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, c.width, c.height);
    // The grid: 1 mm minor, 5 mm major lines.
    for (let mm = 0; mm <= widthMm; ++mm) {
      ctx.strokeStyle = mm % 5 === 0 ? '#e8a0a0' : '#f6d7d7';
      ctx.lineWidth = mm % 5 === 0 ? Math.max(1, dpr) : 1;
      ctx.beginPath();
      ctx.moveTo(Math.round(mm * k) + 0.5, 0);
      ctx.lineTo(Math.round(mm * k) + 0.5, c.height);
      ctx.stroke();
    }
    for (let mm = 0; mm <= heightMm; ++mm) {
      ctx.strokeStyle = mm % 5 === 0 ? '#e8a0a0' : '#f6d7d7';
      ctx.lineWidth = mm % 5 === 0 ? Math.max(1, dpr) : 1;
      ctx.beginPath();
      ctx.moveTo(0, Math.round(mm * k) + 0.5);
      ctx.lineTo(c.width, Math.round(mm * k) + 0.5);
      ctx.stroke();
    }
    ctx.strokeStyle = '#000';
    ctx.fillStyle = '#000';
    ctx.lineWidth = Math.max(1, 1.2 * dpr);
    ctx.font = `${12 * dpr}px sans-serif`;
    const hz = samples.samplingHz;
    // One trace: `lead` from `t0` for `dur` seconds at x (mm) on the row whose baseline is y.
    const trace = (name: string, t0: number, dur: number, xMm: number, yMm: number) => {
      const lead = byName.get(name.toUpperCase());
      if (!lead) return;
      const from = Math.floor(t0 * hz);
      const to = Math.min(lead.samples.length, Math.floor((t0 + dur) * hz));
      ctx.beginPath();
      for (let i = from; i < to; ++i) {
        const x = (xMm + ((i - from) / hz) * MM_PER_S) * k;
        const y = (yMm - (lead.samples[i] / 1000) * MM_PER_MV) * k;
        if (i === from) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      }
      ctx.stroke();
      ctx.fillText(lead.lead, (xMm + 1) * k, (yMm - 8) * k);
    };
    const calibration = (yMm: number) => {
      ctx.beginPath();
      ctx.moveTo(0.5 * k, yMm * k);
      ctx.lineTo(1 * k, yMm * k);
      ctx.lineTo(1 * k, (yMm - MM_PER_MV) * k);
      ctx.lineTo(4 * k, (yMm - MM_PER_MV) * k);
      ctx.lineTo(4 * k, yMm * k);
      ctx.lineTo(4.5 * k, yMm * k);
      ctx.stroke();
    };
    for (let r = 0; r < rows; ++r) calibration(r * ROW_MM + 15);
    if (standard) {
      const segment = Math.min(2.5, seconds / 4);
      STANDARD.forEach((row, r) =>
        row.forEach((name, col) =>
          trace(name, col * segment, segment, CAL_MM + col * segment * MM_PER_S, r * ROW_MM + 15),
        ),
      );
      trace('II', 0, seconds, CAL_MM, 3 * ROW_MM + 15);
    } else {
      samples.leads.forEach((l, r) => trace(l.lead, 0, seconds, CAL_MM, r * ROW_MM + 15));
    }
    // The caliper, in CSS px.
    if (caliper) {
      ctx.strokeStyle = '#0b5cad';
      ctx.lineWidth = Math.max(1, dpr);
      ctx.setLineDash([4 * dpr, 3 * dpr]);
      const x0 = caliper.x0 * dpr;
      const x1 = caliper.x1 * dpr;
      const y0 = caliper.y0 * dpr;
      const y1 = caliper.y1 * dpr;
      for (const x of [x0, x1]) {
        ctx.beginPath();
        ctx.moveTo(x, 0);
        ctx.lineTo(x, c.height);
        ctx.stroke();
      }
      for (const y of [y0, y1]) {
        ctx.beginPath();
        ctx.moveTo(Math.min(x0, x1), y);
        ctx.lineTo(Math.max(x0, x1), y);
        ctx.stroke();
      }
      ctx.setLineDash([]);
    }
    c.dataset.state = 'ready';
    c.dataset.pxPerMm = String(k);
  }, [samples, zoom, caliper, pxMm]);

  const point = (e: PointerEvent) => {
    const r = (e.currentTarget as HTMLElement).getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  };
  const [dragging, setDragging] = useState(false);
  const caliperText = () => {
    if (!caliper) return '';
    const ms = (Math.abs(caliper.x1 - caliper.x0) / scale / MM_PER_S) * 1000;
    const mv = Math.abs(caliper.y1 - caliper.y0) / scale / MM_PER_MV;
    const bpm = ms > 0 ? Math.round(60000 / ms) : 0;
    return `Δt ${Math.round(ms)} ms · ${bpm} /min · Δ ${mv.toFixed(2)} mV`;
  };

  if (error) return <p class="error">{error}</p>;
  return (
    <div class="ecg-viewer">
      <div class="tools" role="toolbar">
        {[1, 1.5, 2].map((z) => (
          <button
            type="button"
            class={zoom === z ? 'on' : ''}
            aria-pressed={zoom === z}
            onClick={() => setZoom(z)}
          >
            {z}×
          </button>
        ))}
        <span>25 mm/s · 10 mm/mV</span>
        <span class="caliper" role="status">
          {caliperText()}
        </span>
        <button type="button" aria-expanded={calibrating} onClick={() => setCalibrating((c) => !c)}>
          {t('calibrate')}
        </button>
      </div>
      {calibrating && (
        <div class="calibration">
          {/* True scale needs the screen's real pixel size: measure this bar with a ruler. */}
          <div class="bar" style={{ width: `${50 * pxMm}px` }} />
          <label>
            {t('barMeasures')}
            <input
              type="number"
              min="10"
              max="200"
              step="0.5"
              value={measured}
              onInput={(e) => setMeasured(e.currentTarget.value)}
            />
            mm
          </label>
          <button
            type="button"
            disabled={!(Number(measured) > 0)}
            onClick={() => {
              const next = (pxMm * 50) / Number(measured);
              localStorage.setItem('yilian.ecg.pxPerMm', String(next));
              setPxMm(next);
              setMeasured('');
              setCalibrating(false);
            }}
          >
            {t('apply')}
          </button>
        </div>
      )}
      <div class="ecg-scroll">
        <canvas
          ref={canvas}
          class="ecg"
          data-state="loading"
          aria-label="ECG"
          onPointerDown={(e) => {
            (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
            const p = point(e);
            setCaliper({ x0: p.x, y0: p.y, x1: p.x, y1: p.y });
            setDragging(true);
          }}
          onPointerMove={(e) => {
            if (!dragging || !caliper) return;
            const p = point(e);
            setCaliper({ ...caliper, x1: p.x, y1: p.y });
          }}
          onPointerUp={() => setDragging(false)}
        />
      </div>
      {analysis && <EcgMeasurements a={analysis} />}
    </div>
  );
}

function EcgMeasurements({ a }: { a: EcgAnalysis }) {
  const v = (x: number | null, unit: string) =>
    x === null || x === undefined ? '—' : `${Math.round(x)} ${unit}`;
  return (
    <div class="ecg-measurements">
      <dl>
        <dt>{t('heartRate')}</dt>
        <dd class="hr">{v(a.heartRate_bpm, '/min')}</dd>
        <dt>PR</dt>
        <dd>{v(a.pr_ms, 'ms')}</dd>
        <dt>QRS</dt>
        <dd>{v(a.qrs_ms, 'ms')}</dd>
        <dt>QT / QTc</dt>
        <dd>
          {v(a.qt_ms, 'ms')} / {v(a.qtcBazett_ms, 'ms')}
        </dd>
        <dt>{t('axis')}</dt>
        <dd>{v(a.axis_deg, '°')}</dd>
      </dl>
      <ul class="flags">
        {a.flags.map((f) => (
          <li class={f.code === 'suspected_stemi' ? 'flag stemi' : 'flag'} data-code={f.code}>
            <strong>{statementText(f)}</strong>
            {f.evidence && <small>{f.evidence}</small>}
          </li>
        ))}
      </ul>
      <p class="hint">{a.note}</p>
    </div>
  );
}
