// A patient's laboratory results from every member the doctor works for: one row per test with
// its latest value, flags and reference range, a trend of repeated numeric results, and the
// consortium's mutual recognition ("recognised — no need to repeat") with a button to take the
// result instead of ordering the test again.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, personName } from './api';
import { dateTime, Key, t } from './i18n';

export interface LabResult {
  id: number;
  institution: string;
  patient: { id: string; name: string };
  code: string;
  codeSystem: string;
  localCode: string;
  name: string;
  valueType: string;
  value: string;
  units: string;
  referenceRange: string;
  flags: string;
  status: string;
  specimenAt: string;
  performingLab: string;
  qualification: string;
  recognition: { recognised: boolean; until?: string; why?: string; whyCode?: string };
}

export interface ImagingReport {
  taskId: number;
  studyInstanceUid: string;
  modality: string;
  description: string;
  institution: string;
  readBy: string;
  finalAt: string;
  impression: string;
  recognition: LabResult['recognition'];
}

function WhyNot(props: { r: LabResult['recognition'] }) {
  const { r } = props;
  return (
    <span class="muted" data-why={r.whyCode}>
      {r.whyCode ? t(`recog_${r.whyCode}` as Key) : r.why}
    </span>
  );
}

// Repeated numeric results of one test, oldest first, as a small line.
function Trend(props: { results: LabResult[] }) {
  const points = props.results
    .filter((r) => r.valueType === 'NM' && Number.isFinite(Number(r.value)))
    .map((r) => ({ at: Date.parse(r.specimenAt), v: Number(r.value) }))
    .sort((a, b) => a.at - b.at);
  if (points.length < 2) return null;
  const w = 160;
  const h = 36;
  const t0 = points[0].at;
  const t1 = points[points.length - 1].at;
  const lo = Math.min(...points.map((p) => p.v));
  const hi = Math.max(...points.map((p) => p.v));
  const x = (at: number) => (t1 === t0 ? w / 2 : 4 + ((w - 8) * (at - t0)) / (t1 - t0));
  const y = (v: number) => (hi === lo ? h / 2 : h - 4 - ((h - 8) * (v - lo)) / (hi - lo));
  return (
    <svg class="trend" width={w} height={h} role="img" aria-label={t('trend')}>
      <polyline points={points.map((p) => `${x(p.at)},${y(p.v)}`).join(' ')} />
      {points.map((p) => (
        <circle cx={x(p.at)} cy={y(p.v)} r={2.5}>
          <title>{`${dateTime(new Date(p.at).toISOString())}: ${p.v}`}</title>
        </circle>
      ))}
    </svg>
  );
}

export function LabResults(props: { patientId: string }) {
  const [query, setQuery] = useState(props.patientId);
  const [results, setResults] = useState<LabResult[] | null>(null);
  const [imaging, setImaging] = useState<ImagingReport[]>([]);
  const [taken, setTaken] = useState<Record<number, boolean>>({});
  const [error, setError] = useState('');
  useEffect(() => {
    setQuery(props.patientId);
    if (!props.patientId) return;
    api<{ results: LabResult[]; imaging: ImagingReport[] }>(
      'GET',
      `/api/lab/results?patientId=${encodeURIComponent(props.patientId)}`,
    )
      .then((r) => {
        setResults(r.results);
        setImaging(r.imaging ?? []);
        setError('');
      })
      .catch((e) => setError(e instanceof ApiError ? e.message : String(e)));
  }, [props.patientId]);
  const take = async (r: LabResult) => {
    try {
      await api('POST', `/api/lab/results/${r.id}/recognise`);
      setTaken({ ...taken, [r.id]: true });
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  };
  // One row per test (LOINC or the sender's code), newest result first.
  const tests = new Map<string, LabResult[]>();
  for (const r of results ?? []) {
    const key = `${r.codeSystem}:${r.code}`;
    tests.set(key, [...(tests.get(key) ?? []), r]);
  }
  const name = results?.[0]?.patient.name;
  return (
    <section class="lab" aria-labelledby="lab-title">
      <h2 id="lab-title">{t('labResults')}</h2>
      <form
        class="lab-search"
        onSubmit={(e) => {
          e.preventDefault();
          location.hash = `#/lab/${encodeURIComponent(query.trim())}`;
        }}
      >
        <label>
          {t('patientId')}
          <input
            name="patientId"
            value={query}
            onInput={(e) => setQuery(e.currentTarget.value)}
            required
          />
        </label>
        <button type="submit" class="primary">
          {t('search')}
        </button>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {results && results.length === 0 && <p class="empty">{t('noLabResults')}</p>}
      {name && (
        <p class="lab-patient">
          <strong>{personName(name)}</strong> {props.patientId}
        </p>
      )}
      {results && results.length > 0 && (
        <table class="lab-table">
          <thead>
            <tr>
              <th>{t('labTest')}</th>
              <th>{t('labValue')}</th>
              <th>{t('referenceRange')}</th>
              <th>{t('specimenTime')}</th>
              <th>{t('performingLab')}</th>
              <th>{t('trend')}</th>
              <th>{t('recognition')}</th>
            </tr>
          </thead>
          <tbody>
            {[...tests.values()].map((rs) => {
              const r = rs[0];
              const abnormal = r.flags !== '' && r.flags !== 'N';
              return (
                <tr data-code={r.code} data-result={r.id} class={abnormal ? 'abnormal' : ''}>
                  <td>
                    {r.name || r.code}
                    <small>
                      {r.codeSystem === 'LN' ? `LOINC ${r.code}` : r.code}
                      {r.localCode && ` · ${r.localCode}`}
                    </small>
                  </td>
                  <td class="value">
                    {r.value} {r.units}
                    {abnormal && <span class="flag">{r.flags}</span>}
                    {r.status === 'P' && <span class="muted"> ({t('preliminary')})</span>}
                  </td>
                  <td>{r.referenceRange}</td>
                  <td>{dateTime(r.specimenAt)}</td>
                  <td>
                    {r.institution}
                    {r.performingLab !== r.institution && ` · ${r.performingLab}`}
                    {r.qualification && <small>{r.qualification}</small>}
                  </td>
                  <td>
                    <Trend results={rs} />
                    {rs.length > 1 && <small>{`${rs.length} ${t('labTimes')}`}</small>}
                  </td>
                  <td class="recognition">
                    {r.recognition.recognised ? (
                      <>
                        <span class="badge recognised" title={dateTime(r.recognition.until ?? '')}>
                          {t('recognisedNoRepeat')}
                        </span>
                        {taken[r.id] ? (
                          <span class="taken">{t('recognitionTaken')}</span>
                        ) : (
                          <button type="button" onClick={() => take(r)}>
                            {t('takeRecognised')}
                          </button>
                        )}
                      </>
                    ) : (
                      <WhyNot r={r.recognition} />
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {imaging.length > 0 && (
        <>
          <h3>{t('imagingReports')}</h3>
          <table class="lab-table imaging">
            <thead>
              <tr>
                <th>{t('modality')}</th>
                <th>{t('impression')}</th>
                <th>{t('signedAt')}</th>
                <th>{t('institution')}</th>
                <th>{t('recognition')}</th>
              </tr>
            </thead>
            <tbody>
              {imaging.map((r) => (
                <tr data-task={r.taskId}>
                  <td>
                    {r.modality}
                    <small>{r.description}</small>
                  </td>
                  <td>{r.impression}</td>
                  <td>{dateTime(r.finalAt)}</td>
                  <td>
                    {r.institution}
                    {r.readBy !== r.institution && <small>{`${t('readAt')} ${r.readBy}`}</small>}
                  </td>
                  <td class="recognition">
                    {r.recognition.recognised ? (
                      <span class="badge recognised">{t('recognisedNoRepeat')}</span>
                    ) : (
                      <WhyNot r={r.recognition} />
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
