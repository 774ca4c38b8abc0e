// The whole-slide viewer of the pathology centre: the slide's pyramid drawn tile by tile on a
// canvas (the level that matches the zoom, tiles fetched as they come into view), pan by
// dragging, zoom by the wheel or the buttons, a scale bar and length measurements in µm from
// the slide's pixel spacing, and its label and overview (macro) images beside it.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, image } from './api';
import { AdvancedViewerButton } from './common';
import { t } from './i18n';

export interface SlideLevel {
  level: number;
  width: number;
  height: number;
  tileWidth: number;
  tileHeight: number;
  tilesAcross: number;
  tilesDown: number;
  micronsPerPixel: number | null;
}
export interface SlideInfo {
  containerId: string;
  levels: SlideLevel[];
  images: Record<string, { url: string; width: number; height: number }>;
}

export const slideUrl = (study: string, series: string) => `/api/slides/${study}/${series}`;

// View: the level-0 pixel at the canvas centre, and screen pixels per level-0 pixel.
interface View {
  x: number;
  y: number;
  scale: number;
}
interface Measure {
  a: [number, number]; // level-0 pixels
  b: [number, number];
}

// The coarsest level whose pixels are still no larger than a screen pixel.
export function levelFor(levels: SlideLevel[], scale: number): number {
  const base = levels[0].width;
  let pick = 0;
  levels.forEach((l, i) => {
    if (base / l.width <= 1 / scale + 1e-9) pick = i;
  });
  return pick;
}

// A length in µm as a pathologist reads it: µm below a millimetre, mm above.
export function lengthText(um: number): string {
  return um >= 1000 ? `${(um / 1000).toFixed(2)} mm` : `${um.toFixed(um < 10 ? 1 : 0)} µm`;
}

// A round scale-bar length (1, 2 or 5 × 10^k µm) of about `target` screen pixels.
function scaleBar(umPerScreenPixel: number, target = 120): { um: number; px: number } {
  const raw = umPerScreenPixel * target;
  const pow = Math.pow(10, Math.floor(Math.log10(raw)));
  const um = [1, 2, 5, 10].map((m) => m * pow).find((v) => v >= raw * 0.6) ?? raw;
  return { um, px: um / umPerScreenPixel };
}

class TileCache {
  private map = new Map<string, ImageBitmap | 'loading' | 'missing'>();
  private inFlight = 0;
  constructor(
    private url: string,
    private redraw: () => void,
  ) {}
  get(level: number, col: number, row: number): ImageBitmap | undefined {
    const key = `${level}/${col}/${row}`;
    const v = this.map.get(key);
    if (v instanceof ImageBitmap) return v;
    if (v === undefined && this.inFlight < 8) {
      this.map.set(key, 'loading');
      this.inFlight++;
      image(`${this.url}/tiles/${key}`)
        .then((blob) => createImageBitmap(blob))
        .then((bmp) => this.map.set(key, bmp))
        .catch(() => this.map.set(key, 'missing'))
        .finally(() => {
          this.inFlight--;
          while (this.map.size > 600) this.map.delete(this.map.keys().next().value as string);
          this.redraw();
        });
    }
    return undefined;
  }
  loaded(): number {
    let n = 0;
    this.map.forEach((v) => v instanceof ImageBitmap && n++);
    return n;
  }
}

function SideImage({ url, label }: { url: string; label: string }) {
  const [src, setSrc] = useState('');
  useEffect(() => {
    let made = '';
    image(url)
      .then((b) => setSrc((made = URL.createObjectURL(b))))
      .catch(() => {});
    return () => made && URL.revokeObjectURL(made);
  }, [url]);
  return (
    <figure class="slide-image">
      {src ? <img src={src} alt={label} /> : <div class="thumb-empty" />}
      <figcaption>{label}</figcaption>
    </figure>
  );
}

export function SlideViewer({ study, series }: { study: string; series: string }) {
  const url = slideUrl(study, series);
  const [info, setInfo] = useState<SlideInfo | null>(null);
  const [error, setError] = useState('');
  const [view, setView] = useState<View | null>(null);
  const [measuring, setMeasuring] = useState(false);
  const [measures, setMeasures] = useState<Measure[]>([]);
  const [pending, setPending] = useState<[number, number] | null>(null);
  const [, setTick] = useState(0);
  const canvas = useRef<HTMLCanvasElement>(null);
  const cache = useRef<TileCache | null>(null);
  const drag = useRef<{ x: number; y: number; moved: boolean } | null>(null);

  useEffect(() => {
    setInfo(null);
    setError('');
    setMeasures([]);
    cache.current = new TileCache(url, () => setTick((n) => n + 1));
    api<SlideInfo>('GET', url)
      .then(setInfo)
      .catch((e) => setError(String(e.message ?? e)));
  }, [url]);

  const fit = () => {
    const c = canvas.current;
    if (!info || !c) return;
    const l0 = info.levels[0];
    const scale = Math.min(c.clientWidth / l0.width, c.clientHeight / l0.height) * 0.95;
    setView({ x: l0.width / 2, y: l0.height / 2, scale });
  };
  useEffect(fit, [info]);

  const mpp = info?.levels[0].micronsPerPixel ?? null;
  // Level-0 pixel under a canvas point.
  const toSlide = (cx: number, cy: number): [number, number] => {
    const c = canvas.current!;
    return [
      view!.x + (cx - c.clientWidth / 2) / view!.scale,
      view!.y + (cy - c.clientHeight / 2) / view!.scale,
    ];
  };
  const toScreen = (x: number, y: number): [number, number] => {
    const c = canvas.current!;
    return [
      (x - view!.x) * view!.scale + c.clientWidth / 2,
      (y - view!.y) * view!.scale + c.clientHeight / 2,
    ];
  };

  // Draw: the tiles in view of the level that fits the zoom, over the coarsest level's.
  useEffect(() => {
    const c = canvas.current;
    if (!c || !info || !view || !cache.current) return;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== c.clientWidth * dpr || c.height !== c.clientHeight * dpr) {
      c.width = c.clientWidth * dpr;
      c.height = c.clientHeight * dpr;
    }
    const g = c.getContext('2d')!;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = '#f4f1ee';
    g.fillRect(0, 0, c.clientWidth, c.clientHeight);
    const wanted = levelFor(info.levels, view.scale);
    const coarsest = info.levels.length - 1;
    for (const lv of coarsest === wanted ? [wanted] : [coarsest, wanted]) {
      const l = info.levels[lv];
      const down = info.levels[0].width / l.width; // level-0 pixels per level pixel
      const [x0, y0] = toSlide(0, 0);
      const [x1, y1] = toSlide(c.clientWidth, c.clientHeight);
      const c0 = Math.max(0, Math.floor(x0 / down / l.tileWidth));
      const r0 = Math.max(0, Math.floor(y0 / down / l.tileHeight));
      const c1 = Math.min(l.tilesAcross - 1, Math.floor(x1 / down / l.tileWidth));
      const r1 = Math.min(l.tilesDown - 1, Math.floor(y1 / down / l.tileHeight));
      for (let r = r0; r <= r1; r++) {
        for (let col = c0; col <= c1; col++) {
          const bmp = cache.current.get(lv, col, r);
          if (!bmp) continue;
          const [sx, sy] = toScreen(col * l.tileWidth * down, r * l.tileHeight * down);
          g.drawImage(bmp, sx, sy, bmp.width * down * view.scale, bmp.height * down * view.scale);
        }
      }
    }
    // Measurements.
    g.strokeStyle = '#0057b8';
    g.fillStyle = '#0057b8';
    g.lineWidth = 2;
    g.font = '14px sans-serif';
    for (const m of measures) {
      const [ax, ay] = toScreen(...m.a);
      const [bx, by] = toScreen(...m.b);
      g.beginPath();
      g.moveTo(ax, ay);
      g.lineTo(bx, by);
      g.stroke();
      if (mpp)
        g.fillText(lengthText(Math.hypot(m.b[0] - m.a[0], m.b[1] - m.a[1]) * mpp), bx + 6, by - 6);
    }
    // Scale bar.
    if (mpp) {
      const bar = scaleBar(mpp / view.scale);
      const y = c.clientHeight - 20;
      g.fillStyle = '#000';
      g.fillRect(16, y, bar.px, 4);
      g.fillText(lengthText(bar.um), 16, y - 6);
    }
  });

  const zoom = (factor: number, cx?: number, cy?: number) => {
    const c = canvas.current;
    if (!c || !view || !info) return;
    const px = cx ?? c.clientWidth / 2;
    const py = cy ?? c.clientHeight / 2;
    const [sx, sy] = toSlide(px, py);
    const scale = Math.min(4, Math.max(0.002, view.scale * factor));
    // Keep the slide point under the cursor where it is.
    setView({
      x: sx - (px - c.clientWidth / 2) / scale,
      y: sy - (py - c.clientHeight / 2) / scale,
      scale,
    });
  };

  if (error) return <div class="slide-viewer error">{error}</div>;
  const level = info && view ? levelFor(info.levels, view.scale) : 0;
  const magnification = mpp && view ? 10 / (mpp / view.scale) : 0;
  return (
    <div class="slide-viewer">
      <div class="slide-stage">
        <div class="tools" role="toolbar">
          <button type="button" onClick={() => zoom(2)} aria-label={t('zoomIn')}>
            +
          </button>
          <button type="button" onClick={() => zoom(0.5)} aria-label={t('zoomOut')}>
            −
          </button>
          <button type="button" onClick={fit}>
            {t('fitSlide')}
          </button>
          <button
            type="button"
            class={measuring ? 'on' : ''}
            aria-pressed={measuring}
            disabled={!mpp}
            onClick={() => {
              setMeasuring((m) => !m);
              setPending(null);
            }}
          >
            {t('toolLength')}
          </button>
          {measures.length > 0 && (
            <button type="button" onClick={() => setMeasures([])}>
              {t('clearMeasures')}
            </button>
          )}
          <AdvancedViewerButton study={study} modalities="SM" />
          <span class="slide-status" data-level={level}>
            {info && view
              ? `${t('slideLevel')} ${level} · ${magnification >= 1 ? magnification.toFixed(1) : magnification.toFixed(2)}×`
              : ''}
          </span>
        </div>
        <canvas
          ref={canvas}
          class={measuring ? 'slide-canvas measuring' : 'slide-canvas'}
          aria-label={t('slide')}
          data-um-per-px={mpp && view ? mpp / view.scale : undefined}
          onWheel={(e) => {
            e.preventDefault();
            zoom(e.deltaY < 0 ? 1.25 : 0.8, e.offsetX, e.offsetY);
          }}
          onPointerDown={(e) => {
            drag.current = { x: e.clientX, y: e.clientY, moved: false };
            (e.currentTarget as HTMLCanvasElement).setPointerCapture(e.pointerId);
          }}
          onPointerMove={(e) => {
            const d = drag.current;
            if (!d || !view || measuring) return;
            const dx = e.clientX - d.x;
            const dy = e.clientY - d.y;
            if (Math.abs(dx) + Math.abs(dy) > 2) d.moved = true;
            d.x = e.clientX;
            d.y = e.clientY;
            setView({ ...view, x: view.x - dx / view.scale, y: view.y - dy / view.scale });
          }}
          onPointerUp={(e) => {
            const d = drag.current;
            drag.current = null;
            if (!measuring || !view || (d && d.moved)) return;
            const p = toSlide(e.offsetX, e.offsetY);
            if (!pending) setPending(p);
            else {
              setMeasures((m) => [...m, { a: pending, b: p }]);
              setPending(null);
            }
          }}
        />
        <ul class="slide-measures" aria-label={t('measurements')}>
          {mpp &&
            measures.map((m) => (
              <li data-um={(Math.hypot(m.b[0] - m.a[0], m.b[1] - m.a[1]) * mpp).toFixed(1)}>
                {lengthText(Math.hypot(m.b[0] - m.a[0], m.b[1] - m.a[1]) * mpp)}
              </li>
            ))}
        </ul>
      </div>
      {info && (
        <aside class="slide-side">
          <dl>
            <dt>{t('slideId')}</dt>
            <dd class="slide-id">{info.containerId}</dd>
            <dt>{t('slideSize')}</dt>
            <dd>
              {info.levels[0].width} × {info.levels[0].height}
            </dd>
            {mpp && (
              <>
                <dt>{t('pixelSize')}</dt>
                <dd>{mpp.toFixed(3)} µm</dd>
              </>
            )}
            <dt>{t('slideLevels')}</dt>
            <dd>{info.levels.length}</dd>
          </dl>
          {info.images.label && <SideImage url={info.images.label.url} label={t('slideLabel')} />}
          {info.images.overview && (
            <SideImage url={info.images.overview.url} label={t('slideOverview')} />
          )}
        </aside>
      )}
    </div>
  );
}
