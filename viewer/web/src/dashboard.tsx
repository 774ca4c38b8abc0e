// The consortium dashboard: volumes per day, turnaround percentiles and SLA compliance by
// institution, modality, priority or reader, over a period; referrals, the emergency centres'
// intervals against their targets, ECG statement agreement; charts and CSV export.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, currentToken } from './api';
import { clinicalName } from './emergency';
import { Key, t } from './i18n';

interface Group {
  count: number;
  p50Minutes: number;
  p90Minutes: number;
  p99Minutes: number;
  slaMetPercent: number;
  [by: string]: string | number;
}

const day = (d: Date) => d.toISOString().slice(0, 10);

// Horizontal bars with their values; a table for screen readers says the same.
function Bars(props: {
  title: string;
  rows: { label: string; value: number }[];
  unit: string;
  max?: number;
}) {
  const max = props.max ?? Math.max(1, ...props.rows.map((r) => r.value));
  const rowH = 22;
  const width = 520;
  const labelW = 140;
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <svg
        width={width}
        height={Math.max(rowH, props.rows.length * rowH)}
        role="img"
        aria-label={props.title}
        class="bars"
      >
        {props.rows.map((r, i) => {
          const w = ((width - labelW - 70) * r.value) / max;
          return (
            <g transform={`translate(0, ${i * rowH})`}>
              <text x={labelW - 6} y={15} text-anchor="end">
                {r.label}
              </text>
              <rect x={labelW} y={3} width={Math.max(1, w)} height={rowH - 6} />
              <text x={labelW + w + 6} y={15}>
                {`${Math.round(r.value * 10) / 10} ${props.unit}`}
              </text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

async function downloadCsv(path: string, name: string) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${currentToken()}` } });
  if (!res.ok) throw new ApiError(res.status, `http_${res.status}`, res.statusText);
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  URL.revokeObjectURL(url);
}

// One interval of an emergency centre over the period's cases (GET /api/stats/emergency).
interface EmergencyFigure {
  centre: string;
  interval: string;
  institution?: string;
  month?: string;
  targetMinutes: number;
  cases: number;
  started: number;
  done: number;
  met: number;
  metPercent: number | null;
  medianMinutes: number | null;
  p90Minutes: number | null;
  inconsistent: number;
}

// The centres' accreditation figures: per interval (and institution or month), how many were
// timed, how many met the target, the median and 90th percentile; intervals no case started
// are left out.
function EmergencyTable({ rows, by }: { rows: EmergencyFigure[]; by: EmergencyBy }) {
  const shown = rows.filter((r) => r.started > 0);
  if (shown.length === 0) return <p class="empty">{t('noCasesInPeriod')}</p>;
  const minutes = (v: number | null) => (v === null ? '—' : v.toFixed(1));
  return (
    <table class="tasks stats emergency-quality">
      <thead>
        <tr>
          <th>{t('caseCentre')}</th>
          {by !== 'centre' && <th>{groupLabel(by)}</th>}
          <th>{t('interval')}</th>
          <th>{t('targetMin')}</th>
          <th>{t('timedOfStarted')}</th>
          <th>{t('targetMet')}</th>
          <th>{t('medianMin')}</th>
          <th>p90 min</th>
          <th>{t('inconsistentTimes')}</th>
        </tr>
      </thead>
      <tbody>
        {shown.map((r) => (
          <tr data-centre={r.centre} data-interval={r.interval} data-group={r[by] ?? ''}>
            <td>{clinicalName(r.centre)}</td>
            {by !== 'centre' && <td>{r[by]}</td>}
            <td>{clinicalName(r.interval, true)}</td>
            <td>{r.targetMinutes}</td>
            <td>
              {r.done} / {r.started}
            </td>
            <td>{r.metPercent === null ? '—' : `${r.metPercent.toFixed(1)}% (${r.met})`}</td>
            <td>{minutes(r.medianMinutes)}</td>
            <td>{minutes(r.p90Minutes)}</td>
            <td>{r.inconsistent || ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

type EmergencyBy = 'centre' | 'institution' | 'month';
const groupLabel = (by: EmergencyBy) =>
  t(by === 'centre' ? 'caseCentre' : by === 'month' ? 'month' : 'by_institution');

export function Dashboard() {
  const [from, setFrom] = useState(day(new Date(Date.now() - 30 * 86400000)));
  const [to, setTo] = useState(day(new Date()));
  const [by, setBy] = useState('institution');
  const [groups, setGroups] = useState<Group[]>([]);
  const [days, setDays] = useState<{ day: string; tasks: number }[]>([]);
  const [referrals, setReferrals] = useState<
    { from: string; to: string; direction: 'up' | 'down'; status: string; count: number }[]
  >([]);
  const [statements, setStatements] = useState<
    {
      code: string;
      proposed: number;
      kept: number;
      added: number;
      acceptedPercent: number | null;
    }[]
  >([]);
  const [avoided, setAvoided] = useState<Record<string, number>>({});
  const [emergency, setEmergency] = useState<EmergencyFigure[]>([]);
  const [emergencyBy, setEmergencyBy] = useState<EmergencyBy>('centre');
  const [error, setError] = useState('');
  // The period is whole local days: from 00:00 of `from` to the end of `to`.
  const range = () => {
    const start = new Date(`${from}T00:00:00`).toISOString();
    const end = new Date(new Date(`${to}T00:00:00`).getTime() + 86400000).toISOString();
    return `from=${encodeURIComponent(start)}&to=${encodeURIComponent(end)}`;
  };
  useEffect(() => {
    Promise.all([
      api<{ groups: Group[] }>('GET', `/api/stats/turnaround?by=${by}&${range()}`),
      api<{ days: { day: string; tasks: number }[] }>('GET', `/api/stats/volume?${range()}`),
      api<{ referrals: typeof referrals }>('GET', `/api/stats/referrals?${range()}`),
      api<{ statements: typeof statements }>('GET', `/api/stats/ecg-statements?${range()}`),
      api<{ byInstitution: Record<string, number> }>('GET', `/api/lab/avoided-repeats?${range()}`),
    ])
      .then(([g, v, r, s, a]) => {
        setGroups(g.groups);
        setDays(v.days);
        setReferrals(r.referrals);
        setStatements(s.statements);
        setAvoided(a.byInstitution);
        setError('');
      })
      .catch((e) => setError(e instanceof ApiError ? e.message : String(e)));
  }, [from, to, by]);
  // The emergency figures have their own grouping: changing it reads only them again.
  useEffect(() => {
    api<{ intervals: EmergencyFigure[] }>(
      'GET',
      `/api/stats/emergency?by=${emergencyBy}&${range()}`,
    )
      .then((e) => setEmergency(e.intervals))
      .catch((e) => setError(e instanceof ApiError ? e.message : String(e)));
  }, [from, to, emergencyBy]);

  const grouping = (kind: string) =>
    kind === 'turnaround' ? `by=${by}&` : kind === 'emergency' ? `by=${emergencyBy}&` : '';
  const csv = (kind: string) =>
    downloadCsv(
      `/api/stats/${kind}?${grouping(kind)}${range()}&format=csv`,
      `yilian-${kind}-${from}-${to}.csv`,
    ).catch((e) => setError(String(e)));
  const total = groups.reduce((n, g) => n + g.count, 0);
  // Referrals per route (from → to), up and down.
  const routes = (direction: 'up' | 'down') => {
    const m = new Map<string, number>();
    for (const r of referrals.filter((x) => x.direction === direction)) {
      const k = `${r.from} → ${r.to}`;
      m.set(k, (m.get(k) ?? 0) + r.count);
    }
    return [...m].map(([label, value]) => ({ label, value }));
  };
  const referralTotal = (d: 'up' | 'down') =>
    referrals.filter((x) => x.direction === d).reduce((n, x) => n + x.count, 0);
  const label = (g: Group) => String(g[by] || '—');
  return (
    <section class="dashboard" aria-labelledby="dashboard-title">
      <div class="toolbar">
        <h2 id="dashboard-title">{t('dashboard')}</h2>
        <label>
          {t('from')}
          <input type="date" value={from} onChange={(e) => setFrom(e.currentTarget.value)} />
        </label>
        <label>
          {t('to')}
          <input type="date" value={to} onChange={(e) => setTo(e.currentTarget.value)} />
        </label>
        <label>
          {t('groupBy')}
          <select value={by} onChange={(e) => setBy(e.currentTarget.value)}>
            {['institution', 'modality', 'priority', 'reader'].map((b) => (
              <option value={b}>{t(`by_${b}` as Key)}</option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => csv('turnaround')}>
          CSV: {t('turnaround')}
        </button>
        <button type="button" onClick={() => csv('volume')}>
          CSV: {t('volume')}
        </button>
        <button type="button" onClick={() => csv('referrals')}>
          CSV: {t('referrals')}
        </button>
        <button type="button" onClick={() => csv('emergency')}>
          CSV: {t('emergencyQuality')}
        </button>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <p class="summary">
        {t('reportedInPeriod')}: <strong data-total={total}>{total}</strong> · {t('referrals')}{' '}
        {t('up')} <strong data-referrals-up={referralTotal('up')}>{referralTotal('up')}</strong> /{' '}
        {t('down')}{' '}
        <strong data-referrals-down={referralTotal('down')}>{referralTotal('down')}</strong>
      </p>
      <div class="charts">
        <Bars
          title={t('volume')}
          unit=""
          rows={days.map((d) => ({ label: d.day, value: d.tasks }))}
        />
        <Bars
          title={`${t('turnaround')} p50 (min)`}
          unit="min"
          rows={groups.map((g) => ({ label: label(g), value: g.p50Minutes }))}
        />
        <Bars
          title={`${t('turnaround')} p90 (min)`}
          unit="min"
          rows={groups.map((g) => ({ label: label(g), value: g.p90Minutes }))}
        />
        <Bars
          title={t('slaMet')}
          unit="%"
          max={100}
          rows={groups.map((g) => ({ label: label(g), value: g.slaMetPercent }))}
        />
        <Bars title={`${t('referrals')}: ${t('up')}`} unit="" rows={routes('up')} />
        <Bars title={`${t('referrals')}: ${t('down')}`} unit="" rows={routes('down')} />
        <Bars
          title={t('avoidedRepeats')}
          unit=""
          rows={Object.entries(avoided).map(([label, value]) => ({ label, value }))}
        />
      </div>
      <table class="tasks stats">
        <thead>
          <tr>
            <th>{t(`by_${by}` as Key)}</th>
            <th>{t('count')}</th>
            <th>p50 min</th>
            <th>p90 min</th>
            <th>p99 min</th>
            <th>{t('slaMet')}</th>
          </tr>
        </thead>
        <tbody>
          {groups.map((g) => (
            <tr data-group={label(g)}>
              <td>{label(g)}</td>
              <td>{g.count}</td>
              <td>{g.p50Minutes.toFixed(1)}</td>
              <td>{g.p90Minutes.toFixed(1)}</td>
              <td>{g.p99Minutes.toFixed(1)}</td>
              <td>{g.slaMetPercent.toFixed(1)}%</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>
        {t('emergencyQuality')}{' '}
        <select
          name="emergency-by"
          aria-label={t('groupBy')}
          value={emergencyBy}
          onChange={(e) => setEmergencyBy(e.currentTarget.value as EmergencyBy)}
        >
          {(['centre', 'institution', 'month'] as const).map((b) => (
            <option value={b}>{groupLabel(b)}</option>
          ))}
        </select>
      </h3>
      <EmergencyTable rows={emergency} by={emergencyBy} />
      <h3>{t('statementAgreement')}</h3>
      <table class="tasks stats ecg-agreement">
        <thead>
          <tr>
            <th>{t('statement')}</th>
            <th>{t('proposedCount')}</th>
            <th>{t('keptCount')}</th>
            <th>{t('addedCount')}</th>
            <th>{t('acceptedPercent')}</th>
          </tr>
        </thead>
        <tbody>
          {statements.map((x) => (
            <tr data-statement={x.code}>
              <td>{x.code}</td>
              <td>{x.proposed}</td>
              <td>{x.kept}</td>
              <td>{x.added}</td>
              <td>{x.acceptedPercent === null ? '—' : `${x.acceptedPercent}%`}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
