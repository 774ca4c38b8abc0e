// The image viewer: series thumbnails, frame scrolling (wheel, keys), window/level by presets
// and by dragging, zoom and pan, length and angle measurement, cine of multi-frame objects.
// Frames are rendered by the hub (WADO-RS rendered, sized to the canvas) and drawn here.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, DicomJson, image, qido, tagNumber, tagNumbers, tagString } from './api';
import { Key, t } from './i18n';
import { SlideInfo, SlideViewer, slideUrl } from './slide';

export const PRESETS: Record<string, [number, number]> = {
  brain: [40, 80],
  subdural: [75, 215],
  stroke: [40, 40],
  lung: [-600, 1500],
  mediastinum: [50, 350],
  bone: [400, 1800],
  abdomen: [50, 400],
};
const PRESET_KEYS = Object.keys(PRESETS);

type Window = { preset: string } | { center: number; width: number };
// What a consult room shares: the driver's series, frame, window, zoom and pan.
export interface ViewState {
  series: string;
  frame: number; // 0-based index in the series' frames
  window: string; // a preset name, "default" or "center,width"
  zoom?: number;
  pan?: { x: number; y: number }; // as fractions of the canvas size (screens differ)
}
function parseWindow(w: string | undefined): Window {
  if (!w) return { preset: 'default' };
  const [c, wd] = w.split(',').map(Number);
  return w.includes(',') && Number.isFinite(c) && Number.isFinite(wd)
    ? { center: c, width: wd }
    : { preset: w || 'default' };
}
type Tool = 'window' | 'pan' | 'zoom' | 'length' | 'angle';
type Point = { x: number; y: number }; // in original image pixels
type Measure = { kind: 'length' | 'angle'; points: Point[] };
// A measurement kept with the study (GET /api/studies/{uid}/measurements).
export interface SavedMeasure extends Measure {
  id: number;
  instance: string;
  frame: number; // 1-based
  value: number;
  unit: 'mm' | 'px' | 'deg';
  by: string;
  institution: string;
  at: string;
  mine: boolean;
}

interface Series {
  uid: string;
  modality: string;
  description: string;
  number: number;
}
interface Frame {
  instance: string;
  frame: number; // 1-based
}
interface Geometry {
  columns: number;
  rows: number;
  spacing: [number, number] | null; // row, column spacing in mm
  center: number;
  width: number;
}

const base = (study: string, series: string) => `/dicom-web/studies/${study}/series/${series}`;

function windowParam(w: Window): string {
  return 'preset' in w ? w.preset : `${Math.round(w.center)},${Math.max(1, Math.round(w.width))}`;
}

// A bounded cache of decoded frames, keyed by URL.
class BitmapCache {
  private map = new Map<string, Promise<ImageBitmap>>();
  get(url: string): Promise<ImageBitmap> {
    let p = this.map.get(url);
    if (p) {
      this.map.delete(url);
      this.map.set(url, p);
      return p;
    }
    p = image(url).then((b) => createImageBitmap(b));
    p.catch(() => this.map.delete(url));
    this.map.set(url, p);
    while (this.map.size > 64) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
    }
    return p;
  }
}

function Thumbnail({ study, series }: { study: string; series: Series }) {
  const [src, setSrc] = useState('');
  useEffect(() => {
    let url = '';
    let cancelled = false;
    // A whole slide: its thumbnail or overview image, else its smallest level's first tile.
    const picture: Promise<Blob> =
      series.modality === 'SM'
        ? api<SlideInfo>('GET', slideUrl(study, series.uid)).then((s) => {
            const small = s.images.thumbnail ?? s.images.overview;
            const last = s.levels.length - 1;
            return image(small ? small.url : `${slideUrl(study, series.uid)}/tiles/${last}/0/0`);
          })
        : qido(`${base(study, series.uid)}/instances?limit=1`).then((list) => {
            const sop = list[0] ? tagString(list[0], '00080018') : '';
            if (!sop) throw new Error('no instance');
            return image(`${base(study, series.uid)}/instances/${sop}/thumbnail`);
          });
    picture
      .then((blob) => {
        if (cancelled) return;
        url = URL.createObjectURL(blob);
        setSrc(url);
      })
      .catch(() => {});
    return () => {
      cancelled = true;
      if (url) URL.revokeObjectURL(url);
    };
  }, [study, series.uid]);
  return src ? <img src={src} alt="" width={96} height={96} /> : <div class="thumb-empty" />;
}

// The study's series, in series number order.
async function loadSeries(study: string): Promise<Series[]> {
  const list = await qido(`/dicom-web/studies/${study}/series`);
  return list
    .map((d: DicomJson) => ({
      uid: tagString(d, '0020000E'),
      modality: tagString(d, '00080060'),
      description: tagString(d, '0008103E'),
      number: tagNumber(d, '00200011'),
    }))
    .sort((a, b) => a.number - b.number);
}

// A series' frames, in instance number order.
async function loadFrames(study: string, series: string): Promise<Frame[]> {
  const list = await qido(`${base(study, series)}/instances?limit=10000`);
  const sorted = list
    .map((d) => ({
      sop: tagString(d, '00080018'),
      number: tagNumber(d, '00200013'),
      frames: Math.max(1, tagNumber(d, '00280008', 1)),
    }))
    .sort((a, b) => a.number - b.number);
  const f: Frame[] = [];
  for (const i of sorted) {
    for (let n = 1; n <= i.frames; ++n) f.push({ instance: i.sop, frame: n });
  }
  return f;
}

export function ImageViewer(props: {
  study: string;
  lowBandwidth: boolean;
  follow?: ViewState | null; // a driver's view to show
  onViewChange?: (v: ViewState) => void; // set when this viewer drives
  // The study's instance count while it is still arriving: when it grows, the series and the
  // frames are fetched again, and the reader stays on the image shown.
  arrived?: number;
}) {
  const { study, lowBandwidth, follow, onViewChange, arrived } = props;
  const [series, setSeries] = useState<Series[]>([]);
  const [current, setCurrent] = useState(0);
  const [frames, setFrames] = useState<Frame[]>([]);
  const [index, setIndex] = useState(0);
  const [win, setWin] = useState<Window>({ preset: 'default' });
  const [zoom, setZoom] = useState(1);
  const [pan, setPan] = useState<Point>({ x: 0, y: 0 });
  const [tool, setTool] = useState<Tool>('window');
  const [saved, setSaved] = useState<SavedMeasure[]>([]);
  const [draft, setDraft] = useState<Measure | null>(null);
  const [playing, setPlaying] = useState(false);
  const [error, setError] = useState('');
  const [geometry, setGeometry] = useState<Geometry | null>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const bitmap = useRef<ImageBitmap | null>(null);
  const cache = useRef(new BitmapCache());
  const generation = useRef(0);
  const pendingFrame = useRef<number | null>(null);
  const drag = useRef<{ x: number; y: number; win: Window; zoom: number; pan: Point } | null>(null);

  // The study's measurements: drawn on their frames, listed beside the image.
  useEffect(() => {
    setSaved([]);
    loadMeasurements(study)
      .then(setSaved)
      .catch((e) => setError(String(e)));
  }, [study]);

  // Series of the study, then the frames of the chosen series.
  useEffect(() => {
    loadSeries(study)
      .then((s) => {
        setSeries(s);
        setCurrent(0);
      })
      .catch((e) => setError(String(e)));
  }, [study]);

  const currentSeries = series[current];
  useEffect(() => {
    if (!currentSeries) return;
    setFrames([]);
    setIndex(0);
    setGeometry(null);
    if (currentSeries.modality === 'SM') return; // a whole slide: the slide viewer's tiles
    loadFrames(study, currentSeries.uid)
      .then((f) => {
        setFrames(f);
        if (pendingFrame.current !== null) {
          setIndex(Math.min(pendingFrame.current, f.length - 1));
          pendingFrame.current = null;
        }
      })
      .catch((e) => setError(String(e)));
  }, [study, currentSeries?.uid]);

  // A study still arriving: new series and new frames appear; the series and the image shown
  // stay (frames arrive in instance order, so the one shown keeps its place or moves later).
  const seenArrived = useRef(arrived);
  useEffect(() => {
    if (arrived === undefined || arrived === seenArrived.current) return;
    seenArrived.current = arrived;
    const shownSeries = currentSeries?.uid;
    const shownFrame = frames[index];
    loadSeries(study)
      .then((s) => {
        setSeries(s);
        const i = s.findIndex((x) => x.uid === shownSeries);
        if (i >= 0) setCurrent(i);
      })
      .catch(() => {});
    if (!shownSeries || currentSeries?.modality === 'SM') return;
    loadFrames(study, shownSeries)
      .then((f) => {
        setFrames(f);
        const at = shownFrame
          ? f.findIndex((x) => x.instance === shownFrame.instance && x.frame === shownFrame.frame)
          : -1;
        if (at >= 0) setIndex(at);
      })
      .catch(() => {});
  }, [arrived]);

  // Following a driver: their series, frame and window.
  useEffect(() => {
    if (!follow || typeof follow.series !== 'string') return;
    const i = series.findIndex((s) => s.uid === follow.series);
    if (i >= 0 && i !== current) {
      pendingFrame.current = follow.frame;
      setCurrent(i);
    } else if (frames.length) {
      setIndex(Math.min(Math.max(follow.frame, 0), frames.length - 1));
    }
    setWin(parseWindow(follow.window));
    const c = canvas.current;
    setZoom(follow.zoom ?? 1);
    if (c && follow.pan) setPan({ x: follow.pan.x * c.width, y: follow.pan.y * c.height });
  }, [follow, series.length]);

  const frame = frames[index];
  // Driving: tell the room what is on screen (after a short pause while scrolling).
  useEffect(() => {
    if (!onViewChange || !currentSeries) return;
    const id = window.setTimeout(() => {
      const c = canvas.current;
      onViewChange({
        series: currentSeries.uid,
        frame: index,
        window: windowParam(win),
        zoom,
        pan: c ? { x: pan.x / c.width, y: pan.y / c.height } : { x: 0, y: 0 },
      });
    }, 150);
    return () => window.clearTimeout(id);
  }, [currentSeries?.uid, index, windowParam(win), zoom, pan, Boolean(onViewChange)]);
  // Size, spacing and the object's own window, from the metadata of the frame's instance.
  useEffect(() => {
    if (!frame || !currentSeries) return;
    fetchGeometry(`${base(study, currentSeries.uid)}/instances/${frame.instance}/metadata`)
      .then(setGeometry)
      .catch(() => {});
  }, [frame?.instance]);

  const urlFor = (f: Frame, w: Window, c: HTMLCanvasElement) => {
    const q = new URLSearchParams();
    if (!('preset' in w) || w.preset !== 'default') q.set('window', windowParam(w));
    q.set('viewport', `${c.width},${c.height}`);
    if (lowBandwidth) q.set('bandwidth', 'low');
    return `${base(study, currentSeries!.uid)}/instances/${f.instance}/frames/${f.frame}/rendered?${q}`;
  };

  const draw = () => {
    const c = canvas.current;
    const ctx = c?.getContext('2d');
    if (!c || !ctx) return;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, c.width, c.height);
    const b = bitmap.current;
    if (!b) return;
    const cols = geometry?.columns ?? b.width;
    const rows = geometry?.rows ?? b.height;
    const s = Math.min(c.width / cols, c.height / rows) * zoom;
    const ox = c.width / 2 + pan.x - (cols * s) / 2;
    const oy = c.height / 2 + pan.y - (rows * s) / 2;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(b, ox, oy, cols * s, rows * s);
    // Measurements, in image pixels.
    const toCanvas = (p: Point) => ({ x: ox + p.x * s, y: oy + p.y * s });
    const onFrame = frame
      ? saved.filter((m) => m.instance === frame.instance && m.frame === frame.frame)
      : [];
    const list: Measure[] = [...onFrame, ...(draft ? [draft] : [])];
    ctx.strokeStyle = '#ffd400';
    ctx.fillStyle = '#ffd400';
    ctx.lineWidth = Math.max(1, window.devicePixelRatio);
    ctx.font = `${14 * window.devicePixelRatio}px sans-serif`;
    for (const m of list) {
      const pts = m.points.map(toCanvas);
      ctx.beginPath();
      pts.forEach((p, i) => (i ? ctx.lineTo(p.x, p.y) : ctx.moveTo(p.x, p.y)));
      ctx.stroke();
      const label = 'unit' in m ? valueLabel(m as SavedMeasure) : measureLabel(m, geometry);
      const at = pts[pts.length - 1];
      if (label && at) ctx.fillText(label, at.x + 6, at.y - 6);
    }
  };

  // What arrives later (a frame's bitmap, a new canvas size) is drawn with the state of the
  // moment, not the one the request was made with.
  const drawLatest = useRef(draw);
  drawLatest.current = draw;

  // The frame on screen: fetched when the frame, the window or the canvas size changes (after a
  // pause while dragging), drawn on every view change.
  useEffect(() => {
    const c = canvas.current;
    if (!c || !frame || !currentSeries) return;
    const gen = ++generation.current;
    c.dataset.state = 'loading';
    const timer = window.setTimeout(
      () => {
        cache.current
          .get(urlFor(frame, win, c))
          .then((b) => {
            if (gen !== generation.current) return;
            bitmap.current = b;
            drawLatest.current();
            c.dataset.state = 'ready';
            c.dataset.window = windowParam(win);
            c.dataset.frame = String(index + 1);
            setError('');
            // Neighbours next, so scrolling does not wait.
            for (const n of [index + 1, index - 1]) {
              if (frames[n]) cache.current.get(urlFor(frames[n], win, c)).catch(() => {});
            }
          })
          .catch((e) => {
            if (gen !== generation.current) return;
            c.dataset.state = 'error';
            setError(String(e));
          });
      },
      drag.current ? 120 : 0,
    );
    return () => window.clearTimeout(timer);
  }, [frame?.instance, frame?.frame, windowParam(win), lowBandwidth, currentSeries?.uid]);

  useEffect(draw, [zoom, pan, saved, draft, geometry]);

  // The canvas follows its box, in device pixels.
  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    const fit = () => {
      const r = c.getBoundingClientRect();
      const w = Math.max(1, Math.round(r.width * window.devicePixelRatio));
      const h = Math.max(1, Math.round(r.height * window.devicePixelRatio));
      if (c.width !== w || c.height !== h) {
        c.width = w;
        c.height = h;
        drawLatest.current();
      }
    };
    fit();
    const ro = new ResizeObserver(fit);
    ro.observe(c);
    return () => ro.disconnect();
  }, []);

  // Cine: multi-frame objects play at 15 frames a second.
  useEffect(() => {
    if (!playing || frames.length < 2) return;
    const id = window.setInterval(() => setIndex((i) => (i + 1) % frames.length), 1000 / 15);
    return () => window.clearInterval(id);
  }, [playing, frames.length]);

  const step = (d: number) => setIndex((i) => Math.min(Math.max(i + d, 0), frames.length - 1));
  const reset = () => {
    setZoom(1);
    setPan({ x: 0, y: 0 });
    setWin({ preset: 'default' });
  };

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement;
      if (['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName)) return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === 'ArrowDown' || e.key === 'PageDown') step(e.key === 'PageDown' ? 10 : 1);
      else if (e.key === 'ArrowUp' || e.key === 'PageUp') step(e.key === 'PageUp' ? -10 : -1);
      else if (e.key === 'Home') setIndex(0);
      else if (e.key === 'End') setIndex(frames.length - 1);
      else if (e.key >= '1' && e.key <= '7') setWin({ preset: PRESET_KEYS[Number(e.key) - 1] });
      else if (e.key === '0') setWin({ preset: 'default' });
      else if (e.key === 'r' || e.key === 'R') reset();
      else if (e.key === ' ' && frames.length > 1) setPlaying((p) => !p);
      else return;
      e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [frames.length]);

  const imagePoint = (e: PointerEvent): Point | null => {
    const c = canvas.current;
    const b = bitmap.current;
    if (!c || !b) return null;
    const r = c.getBoundingClientRect();
    const x = (e.clientX - r.left) * window.devicePixelRatio;
    const y = (e.clientY - r.top) * window.devicePixelRatio;
    const cols = geometry?.columns ?? b.width;
    const rows = geometry?.rows ?? b.height;
    const s = Math.min(c.width / cols, c.height / rows) * zoom;
    const ox = c.width / 2 + pan.x - (cols * s) / 2;
    const oy = c.height / 2 + pan.y - (rows * s) / 2;
    // On the image: a point dragged past its edge stays on the edge.
    const clamp = (v: number, most: number) => Math.min(Math.max(v, 0), most);
    return { x: clamp((x - ox) / s, cols), y: clamp((y - oy) / s, rows) };
  };

  const onPointerDown = (e: PointerEvent) => {
    (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
    if (tool === 'length' || tool === 'angle') {
      const p = imagePoint(e);
      if (!p) return;
      if (draft && draft.kind === 'angle' && draft.points.length === 2) {
        commit({ ...draft, points: [...draft.points, p] });
        return;
      }
      setDraft({ kind: tool, points: [p, p] });
      return;
    }
    drag.current = { x: e.clientX, y: e.clientY, win, zoom, pan };
  };
  const onPointerMove = (e: PointerEvent) => {
    if (draft) {
      const p = imagePoint(e);
      if (!p) return;
      const pts = [...draft.points];
      pts[pts.length - 1] = p;
      setDraft({ ...draft, points: pts });
      return;
    }
    const d = drag.current;
    if (!d) return;
    const dx = e.clientX - d.x;
    const dy = e.clientY - d.y;
    const dpr = window.devicePixelRatio;
    if (tool === 'pan') setPan({ x: d.pan.x + dx * dpr, y: d.pan.y + dy * dpr });
    else if (tool === 'zoom') setZoom(Math.min(20, Math.max(0.1, d.zoom * Math.exp(-dy / 200))));
    else if (tool === 'window') {
      const [c0, w0] =
        'preset' in d.win
          ? (PRESETS[d.win.preset] ?? [geometry?.center ?? 40, geometry?.width ?? 400])
          : [d.win.center, d.win.width];
      setWin({
        center: c0 + dy * Math.max(1, w0 / 256),
        width: Math.max(1, w0 + dx * Math.max(1, w0 / 256)),
      });
    }
  };
  const onPointerUp = () => {
    drag.current = null;
    if (draft?.kind === 'length') commit(draft);
    else if (draft?.kind === 'angle' && draft.points.length === 2) {
      setDraft({ ...draft, points: [...draft.points, draft.points[1]] });
    }
  };
  // A finished measurement is kept with the study at once; shown when the hub has it.
  const commit = (m: Measure) => {
    setDraft(null);
    const v = measureValue(m, geometry);
    // A click without a drag measures nothing.
    const [a, b] = m.points;
    if (!frame || !v || !a || !b || (m.kind === 'length' && Math.hypot(b.x - a.x, b.y - a.y) < 1))
      return;
    api<SavedMeasure>('POST', `/api/studies/${encodeURIComponent(study)}/measurements`, {
      instance: frame.instance,
      frame: frame.frame,
      kind: m.kind,
      points: m.points,
      value: v.value,
      unit: v.unit,
    })
      .then((s) => setSaved((all) => [...all, s]))
      .catch((e) => setError(String(e)));
  };
  const remove = (m: SavedMeasure) => {
    api('DELETE', `/api/studies/${encodeURIComponent(study)}/measurements/${m.id}`)
      .then(() => setSaved((all) => all.filter((x) => x.id !== m.id)))
      .catch((e) => setError(String(e)));
  };
  // The current series' measurements, each opening its frame.
  const frameAt = useMemo(() => new Map(frames.map((f, i) => [frameKey(f), i])), [frames]);
  const inSeries = useMemo(
    () => saved.map((m) => ({ m, at: frameAt.get(frameKey(m)) ?? -1 })).filter((x) => x.at >= 0),
    [saved, frameAt],
  );
  const onWheel = (e: WheelEvent) => {
    e.preventDefault();
    if (e.ctrlKey) setZoom((z) => Math.min(20, Math.max(0.1, z * Math.exp(-e.deltaY / 500))));
    else step(e.deltaY > 0 ? 1 : -1);
  };

  const seriesList = (
    <aside class="series" aria-label={t('series')}>
      {series.map((s, i) => (
        <button
          type="button"
          key={s.uid}
          class={i === current ? 'thumb current' : 'thumb'}
          aria-pressed={i === current}
          onClick={() => setCurrent(i)}
        >
          <Thumbnail study={study} series={s} />
          <span>
            {s.modality} {s.number} {s.description}
          </span>
        </button>
      ))}
    </aside>
  );
  if (currentSeries?.modality === 'SM') {
    return (
      <div class="viewer">
        {seriesList}
        <SlideViewer study={study} series={currentSeries.uid} />
      </div>
    );
  }
  const tools: Tool[] = ['window', 'pan', 'zoom', 'length', 'angle'];
  const toolKey: Record<Tool, Key> = {
    window: 'toolWindow',
    pan: 'toolPan',
    zoom: 'toolZoom',
    length: 'toolLength',
    angle: 'toolAngle',
  };
  return (
    <div class="viewer">
      {seriesList}
      <div class="stage">
        <div class="tools" role="toolbar">
          {tools.map((x) => (
            <button
              type="button"
              class={tool === x ? 'on' : ''}
              aria-pressed={tool === x}
              onClick={() => setTool(x)}
            >
              {t(toolKey[x])}
            </button>
          ))}
          <select
            aria-label={t('window')}
            value={'preset' in win ? win.preset : ''}
            onChange={(e) => setWin({ preset: e.currentTarget.value })}
          >
            <option value="default">0 {t('presetDefault')}</option>
            {PRESET_KEYS.map((p, i) => (
              <option value={p}>
                {i + 1} {t(p as Key)}
              </option>
            ))}
            {!('preset' in win) && <option value="">{windowParam(win)}</option>}
          </select>
          {frames.length > 1 && (
            <button type="button" onClick={() => setPlaying((p) => !p)} aria-pressed={playing}>
              {playing ? '❚❚' : '▶'}
            </button>
          )}
          <button type="button" onClick={reset}>
            {t('reset')}
          </button>
        </div>
        <canvas
          ref={canvas}
          class="image"
          data-state="loading"
          tabIndex={0}
          aria-label={`${t('frame')} ${index + 1} / ${frames.length}`}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={onPointerUp}
          onWheel={onWheel}
        />
        <div class="overlay">
          <span>
            {currentSeries ? `${currentSeries.modality} ${currentSeries.description}` : ''}
          </span>
          <span>
            {t('frame')} {frames.length ? index + 1 : 0}/{frames.length}
          </span>
          <span>
            {t('window')}{' '}
            {'preset' in win
              ? t((win.preset === 'default' ? 'presetDefault' : win.preset) as Key)
              : windowParam(win)}
          </span>
          <span>{Math.round(zoom * 100)}%</span>
        </div>
        {inSeries.length > 0 && (
          <ul class="measurements" aria-label={t('measurements')}>
            {inSeries.map(({ m, at }) => (
              <li data-measurement={m.id} class={at === index ? 'current' : ''}>
                <button type="button" class="link" onClick={() => setIndex(at)}>
                  {t(m.kind === 'length' ? 'measureLength' : 'measureAngle')} {valueLabel(m)} ·{' '}
                  {t('frame')} {at + 1}
                </button>{' '}
                <small class="muted">
                  {m.by} · {m.institution}
                </small>
                {m.mine && (
                  <button
                    type="button"
                    class="remove"
                    aria-label={`${t('remove')} ${valueLabel(m)}`}
                    onClick={() => remove(m)}
                  >
                    ×
                  </button>
                )}
              </li>
            ))}
          </ul>
        )}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </div>
    </div>
  );
}

const frameKey = (f: { instance: string; frame: number }) => `${f.instance}/${f.frame}`;

async function loadMeasurements(study: string): Promise<SavedMeasure[]> {
  const r = await api<{ measurements: SavedMeasure[] }>(
    'GET',
    `/api/studies/${encodeURIComponent(study)}/measurements`,
  );
  return r.measurements;
}

// A kept measurement's value as the viewer shows it.
export function valueLabel(m: { value: number; unit: string }): string {
  return m.unit === 'deg' ? `${m.value.toFixed(1)}°` : `${m.value.toFixed(1)} ${m.unit}`;
}

async function fetchGeometry(url: string): Promise<Geometry> {
  const [d] = await qido(url);
  if (!d) throw new Error('no metadata');
  const spacing = tagNumbers(d, '00280030');
  return {
    columns: tagNumber(d, '00280011', 0) || 1,
    rows: tagNumber(d, '00280010', 0) || 1,
    spacing: spacing.length === 2 ? [spacing[0], spacing[1]] : null,
    center: tagNumbers(d, '00281050')[0] ?? 40,
    width: tagNumbers(d, '00281051')[0] ?? 400,
  };
}

// What a drawn measurement measures: a length in mm with the pixel spacing (else in pixels), an
// angle in degrees; null until it has its points.
function measureValue(
  m: Measure,
  g: Geometry | null,
): { value: number; unit: 'mm' | 'px' | 'deg' } | null {
  const [a, b, c] = m.points;
  if (m.kind === 'length' && a && b) {
    const sy = g?.spacing?.[0];
    const sx = g?.spacing?.[1];
    if (sx && sy) return { value: Math.hypot((b.x - a.x) * sx, (b.y - a.y) * sy), unit: 'mm' };
    return { value: Math.hypot(b.x - a.x, b.y - a.y), unit: 'px' };
  }
  if (m.kind === 'angle' && a && b && c) {
    const a1 = Math.atan2(a.y - b.y, a.x - b.x);
    const a2 = Math.atan2(c.y - b.y, c.x - b.x);
    let deg = Math.abs(((a1 - a2) * 180) / Math.PI);
    if (deg > 180) deg = 360 - deg;
    return { value: deg, unit: 'deg' };
  }
  return null;
}

function measureLabel(m: Measure, g: Geometry | null): string {
  const v = measureValue(m, g);
  return v ? valueLabel(v) : '';
}
