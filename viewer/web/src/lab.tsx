// A patient's record from every member the doctor works for: one timeline, newest first, of
// laboratory panels, imaging, pathology and ECG examinations with their readings and reports,
// consults and referrals;
// then one row per test with its latest value, flags and reference range, a trend of repeated
// numeric results, and the consortium's mutual recognition ("recognised — no need to repeat")
// with a button to take the result instead of ordering the test again.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, personName } from './api';
import { reasonText, statusText, useInstitutionNames } from './common';
import { clinicalName } from './emergency';
import { dateTime, dayOf, Key, t, timeOf } from './i18n';

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

export interface StudyRead {
  taskId: number;
  service: string;
  status: string;
  priority: string;
  priorityReason: string;
  finalAt: string;
  impression: string;
  readBy: string;
  critical: boolean;
  recognition?: LabResult['recognition'];
}

// A consult about the patient or a referral of the patient.
export interface CareItem {
  id: number;
  status: string;
  urgency: string;
  text: string;
  answer: string;
  by: string;
  specialty?: string;
  open?: boolean;
  to?: string;
  direction?: 'up' | 'down';
}

export interface TimelineEntry {
  kind: 'lab' | 'imaging' | 'ecg' | 'pathology' | 'consult' | 'referral' | 'emergency';
  at: string;
  institution: string;
  order?: { code: string; name: string };
  performingLab?: string;
  results?: LabResult[];
  study?: {
    studyInstanceUid: string;
    modalities: string;
    description: string;
    numberOfSeries: number;
    numberOfInstances: number;
    open: boolean;
  };
  reads?: StudyRead[];
  consult?: CareItem;
  referral?: CareItem;
  emergency?: EmergencyItem;
}

// An emergency case of the patient (chest pain, stroke, ...): its key time points as recorded.
interface EmergencyItem {
  id: number;
  kind: string;
  status: 'open' | 'closed';
  source: string;
  reason: string;
  openedBy: string;
  acknowledgedBy: string;
  acknowledgedAt: string;
  closedAt: string;
  timePoints: { point: string; at: string }[];
  open: boolean;
}

interface Timeline {
  patient: {
    id: string;
    name: string;
    birthDate: string;
    sex: string;
    institutions?: string[];
    national?: boolean;
  };
  entries: TimelineEntry[];
  // The kinds of which only the newest are listed: older ones exist.
  bounded?: ('results' | 'studies' | 'consults' | 'referrals' | 'emergencies')[];
}

// One of the people a Patient ID names at different members (a 409 from the hub).
interface PatientCandidate {
  institutions: string[];
  national: boolean;
  name: string;
  birthDate: string;
  sex: string;
}

// "F", "19600101" as the patient line shows them.
function sexAndBirth(p: { sex: string; birthDate: string }): string {
  let out = '';
  if (p.sex === 'M' || p.sex === 'F') out += ` · ${t(`sex_${p.sex}`)}`;
  if (/^\d{8}$/.test(p.birthDate))
    out += ` · ${t('born')} ${p.birthDate.replace(/(\d{4})(\d{2})(\d{2})/, '$1-$2-$3')}`;
  return out;
}

// The people one ID names at different members: the clinician chooses whose record to open.
function PatientChoice(props: {
  patientId: string;
  candidates: PatientCandidate[];
  names: Record<string, string>;
}) {
  return (
    <section class="patient-choice" aria-labelledby="patient-choice-title">
      <p id="patient-choice-title">{t('ambiguousPatient')}</p>
      <ul>
        {props.candidates.map((c) => (
          <li key={c.institutions.join()}>
            <a
              href={`#/lab/${encodeURIComponent(props.patientId)}/${encodeURIComponent(c.institutions[0] ?? '')}`}
              data-institution={c.institutions[0]}
            >
              <strong>{personName(c.name) || props.patientId}</strong>
              {sexAndBirth(c)} · {t('patientOf')}{' '}
              {c.institutions.map((i) => props.names[i] ?? i).join(', ')}
              {c.national && ` · ${t('nationalId')}`}
            </a>
          </li>
        ))}
      </ul>
    </section>
  );
}

const KINDS = ['lab', 'imaging', 'ecg', 'pathology', 'consult', 'referral', 'emergency'] as const;

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

const isAbnormal = (r: LabResult) => r.flags !== '' && r.flags !== 'N';

// A result's value and units, with its abnormal flag.
function Value({ r }: { r: LabResult }) {
  return (
    <>
      {r.value} {r.units}
      {isAbnormal(r) && <span class="flag">{r.flags}</span>}
    </>
  );
}

function Recognised(props: { r: LabResult['recognition'] }) {
  const { r } = props;
  return r.recognised ? (
    <span class="badge recognised" title={dateTime(r.until ?? '')}>
      {t('recognisedNoRepeat')}
    </span>
  ) : (
    <WhyNot r={r} />
  );
}

// A laboratory's qualification as the consortium's table names it, in the screen's language
// where it is one of the usual ones.
const QUALIFICATIONS: Record<string, Key> = {
  iso15189: 'q_iso15189',
  national_eqa: 'q_national_eqa',
  provincial_eqa: 'q_provincial_eqa',
  tertiary: 'q_tertiary',
};
function qualificationText(q: string): string {
  return QUALIFICATIONS[q] ? t(QUALIFICATIONS[q]) : q;
}

function LabPanel({ e }: { e: TimelineEntry }) {
  const results = e.results ?? [];
  return (
    <>
      <header>
        <strong>{e.order?.name || e.order?.code || t('tl_lab')}</strong>
        <span class="muted">
          {e.institution}
          {e.performingLab && e.performingLab !== e.institution && ` · ${e.performingLab}`}
        </span>
      </header>
      <ul class="panel-results">
        {results.map((r) => (
          <li data-code={r.code} class={isAbnormal(r) ? 'abnormal' : ''}>
            <span class="test">{r.name || r.code}</span>
            <span class="value">
              <Value r={r} />
            </span>
            <span class="muted">{r.referenceRange}</span>
            <Recognised r={r.recognition} />
          </li>
        ))}
      </ul>
    </>
  );
}

function StudyEntry({ e }: { e: TimelineEntry }) {
  const study = e.study!;
  const reads = e.reads ?? [];
  return (
    <>
      <header>
        <strong>
          <span class="modality">{study.modalities}</span> {study.description}
        </strong>
        <span class="muted">
          {e.institution} · {study.numberOfInstances} {t('tl_images')}
        </span>
      </header>
      {reads.length === 0 && <p class="muted">{t('tl_notRouted')}</p>}
      {reads.map((r) => (
        <div class="read" data-task={r.taskId} data-status={r.status}>
          {r.priority !== 'routine' && (
            <span class={`badge ${r.priority}`}>{t(r.priority as Key)}</span>
          )}
          {r.critical && <span class="badge stat">{t('critical')}</span>}
          <span class="status">{statusText(r.status)}</span>
          {r.priorityReason && <span class="muted"> {reasonText(r.priorityReason)}</span>}
          {r.impression && <p class="impression">{r.impression}</p>}
          {r.finalAt && (
            <small>
              {t('signedAt')} {dateTime(r.finalAt)}
              {r.readBy && ` · ${t('readAt')} ${r.readBy}`}
            </small>
          )}
          {r.recognition && <Recognised r={r.recognition} />}
          {study.open ? (
            <a class="open" href={`#/report/${r.taskId}`}>
              {t(e.kind === 'ecg' ? 'tl_openEcg' : 'tl_openReport')}
            </a>
          ) : (
            <small class="muted">{t('tl_notShared')}</small>
          )}
        </div>
      ))}
    </>
  );
}

// A consult's, referral's or emergency case's heading: what it is, the member, and who.
function CareHeader(props: { title: string; institution: string; by: string }) {
  return (
    <header>
      <strong>{props.title}</strong>
      <span class="muted">
        {props.institution}
        {props.by && ` · ${props.by}`}
      </span>
    </header>
  );
}

// A consult (its specialty, question and opinion; the room opens for those who take part) or a
// referral (where to, why, and the answer).
function CareEntry({ e }: { e: TimelineEntry }) {
  const consult = e.kind === 'consult';
  const c = (consult ? e.consult : e.referral)!;
  return (
    <>
      <CareHeader
        title={consult ? t(c.specialty as Key) : `${t(c.direction as Key)} → ${c.to}`}
        institution={e.institution}
        by={c.by}
      />
      <div class="read" data-status={c.status}>
        {c.urgency !== 'routine' && (
          <span class={`badge ${c.urgency === 'emergency' ? 'stat' : c.urgency}`}>
            {t(c.urgency as Key)}
          </span>
        )}
        <span class="status">{t((consult ? c.status : `ref_${c.status}`) as Key)}</span>
        <p class="question">{c.text}</p>
        {c.answer && <p class="impression">{c.answer}</p>}
        {consult && c.open && (
          <a class="open" href={`#/consult/${c.id}`}>
            {t('tl_openConsult')}
          </a>
        )}
        {!consult && (
          <a class="open" href="#/referrals">
            {t('tl_openReferrals')}
          </a>
        )}
      </div>
    </>
  );
}

// An emergency case: its kind, why it was opened, who acknowledged the alert, and its time
// points; for the centres that serve it, an open case links to their emergency board and a
// closed one to its review.
function EmergencyEntry({ e }: { e: TimelineEntry }) {
  const c = e.emergency!;
  return (
    <>
      <CareHeader title={clinicalName(c.kind)} institution={e.institution} by={c.openedBy} />
      <div class="read" data-status={c.status}>
        <span class="badge stat">{t('emergency')}</span>
        <span class="status">{t(c.status === 'open' ? 'caseOpen' : 'caseClosed')}</span>
        {c.reason && <p class="question">{reasonText(c.reason)}</p>}
        {c.acknowledgedBy && (
          <p class="muted">
            {t('acknowledgedBy')} {c.acknowledgedBy} {dateTime(c.acknowledgedAt)}
          </p>
        )}
        {c.timePoints.length > 0 && (
          <ul class="points">
            {c.timePoints.map((p) => (
              <li data-point={p.point}>
                {clinicalName(p.point)} <time>{dateTime(p.at)}</time>
              </li>
            ))}
          </ul>
        )}
        {c.open && c.status === 'open' && (
          <a class="open" href="#/emergency">
            {t('tl_openEmergency')}
          </a>
        )}
        {c.open && c.status === 'closed' && (
          <a class="open" href={`#/emergency/case/${c.id}`}>
            {t('tl_reviewEmergency')}
          </a>
        )}
      </div>
    </>
  );
}

// The patient's examinations and results newest first, one day under each heading, with a
// filter by kind.
function TimelineView({ entries }: { entries: TimelineEntry[] }) {
  const [only, setOnly] = useState<string>('all');
  const shown = entries.filter((e) => only === 'all' || e.kind === only);
  let lastDay = '';
  return (
    <section class="timeline" aria-labelledby="timeline-title">
      <h3 id="timeline-title">{t('timeline')}</h3>
      <div class="filters" role="group">
        {['all', ...KINDS].map((k) => {
          const n = k === 'all' ? entries.length : entries.filter((e) => e.kind === k).length;
          if (k !== 'all' && n === 0) return null;
          return (
            <button
              type="button"
              data-kind={k}
              aria-pressed={only === k}
              class={only === k ? 'on' : ''}
              onClick={() => setOnly(k)}
            >
              {`${t(k === 'all' ? 'all' : (`tl_${k}` as Key))} ${n}`}
            </button>
          );
        })}
      </div>
      <ol>
        {shown.map((e) => {
          const d = dayOf(e.at);
          const heading = d !== lastDay;
          lastDay = d;
          return (
            <>
              {heading && <li class="day">{d}</li>}
              <li class={`entry ${e.kind}`} data-kind={e.kind}>
                <span class="kind">{t(`tl_${e.kind}` as Key)}</span>
                <time dateTime={e.at}>{timeOf(e.at)}</time>
                <div class="body">
                  {e.kind === 'lab' ? (
                    <LabPanel e={e} />
                  ) : e.kind === 'consult' || e.kind === 'referral' ? (
                    <CareEntry e={e} />
                  ) : e.kind === 'emergency' ? (
                    <EmergencyEntry e={e} />
                  ) : (
                    <StudyEntry e={e} />
                  )}
                </div>
              </li>
            </>
          );
        })}
      </ol>
    </section>
  );
}

export function LabResults(props: { patientId: string; institution: string }) {
  const [query, setQuery] = useState(props.patientId);
  const [timeline, setTimeline] = useState<Timeline | null>(null);
  const [candidates, setCandidates] = useState<PatientCandidate[] | null>(null);
  const [taken, setTaken] = useState<Record<number, boolean>>({});
  const [error, setError] = useState('');
  const names = useInstitutionNames();
  useEffect(() => {
    setQuery(props.patientId);
    setTimeline(null);
    setCandidates(null);
    if (!props.patientId) return;
    const at = props.institution ? `&institution=${encodeURIComponent(props.institution)}` : '';
    api<Timeline>('GET', `/api/timeline?patientId=${encodeURIComponent(props.patientId)}${at}`)
      .then((r) => {
        setTimeline(r);
        setError('');
      })
      .catch((e) => {
        const body = e instanceof ApiError ? (e.body as { candidates?: PatientCandidate[] }) : null;
        if (e instanceof ApiError && e.status === 409 && body?.candidates) {
          setCandidates(body.candidates);
          setError('');
        } else {
          setError(e instanceof ApiError ? e.message : String(e));
        }
      });
  }, [props.patientId, props.institution]);
  const take = async (r: LabResult) => {
    try {
      await api('POST', `/api/lab/results/${r.id}/recognise`);
      setTaken({ ...taken, [r.id]: true });
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  };
  // One row per test (LOINC or the sender's code), newest result first.
  const results = (timeline?.entries ?? []).flatMap((e) => e.results ?? []);
  const tests = new Map<string, LabResult[]>();
  for (const r of results) {
    const key = `${r.codeSystem}:${r.code}`;
    tests.set(key, [...(tests.get(key) ?? []), r]);
  }
  const patient = timeline?.patient;
  return (
    <section class="lab" aria-labelledby="lab-title">
      <h2 id="lab-title">{t('patientRecord')}</h2>
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
      {candidates && (
        <PatientChoice patientId={props.patientId} candidates={candidates} names={names} />
      )}
      {timeline && timeline.entries.length === 0 && <p class="empty">{t('noLabResults')}</p>}
      {patient && timeline.entries.length > 0 && (
        <p class="lab-patient">
          <strong>{personName(patient.name)}</strong> {patient.id}
          {sexAndBirth(patient)}
          {patient.institutions &&
            patient.institutions.length > 0 &&
            ` · ${t('patientOf')} ${patient.institutions.map((i) => names[i] ?? i).join(', ')}`}
          {patient.national && ` · ${t('nationalId')}`}
        </p>
      )}
      {timeline && timeline.bounded && timeline.bounded.length > 0 && (
        <p class="notice bounded" data-bounded={timeline.bounded.join(' ')}>
          {t('onlyNewest')}
          {timeline.bounded.map((k) => t(`bounded_${k}` as Key)).join(' · ')}
        </p>
      )}
      {timeline && timeline.entries.length > 0 && (
        <TimelineView
          entries={timeline.entries.map((e) => ({
            ...e,
            institution: names[e.institution] ?? e.institution,
            performingLab: e.performingLab && (names[e.performingLab] ?? e.performingLab),
            referral: e.referral && {
              ...e.referral,
              to: names[e.referral.to ?? ''] ?? e.referral.to,
            },
          }))}
        />
      )}
      {tests.size > 0 && (
        <>
          <h3>{t('labResults')}</h3>
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
                return (
                  <tr data-code={r.code} data-result={r.id} class={isAbnormal(r) ? 'abnormal' : ''}>
                    <td>
                      {r.name || r.code}
                      <small>
                        {r.codeSystem === 'LN' ? `LOINC ${r.code}` : r.code}
                        {r.localCode && ` · ${r.localCode}`}
                      </small>
                    </td>
                    <td class="value">
                      <Value r={r} />
                      {r.status === 'P' && <span class="muted"> ({t('preliminary')})</span>}
                    </td>
                    <td>{r.referenceRange}</td>
                    <td>{dateTime(r.specimenAt)}</td>
                    <td>
                      {names[r.institution] ?? r.institution}
                      {r.performingLab !== r.institution && ` · ${r.performingLab}`}
                      {r.qualification && <small>{qualificationText(r.qualification)}</small>}
                    </td>
                    <td>
                      <Trend results={rs} />
                      {rs.length > 1 && <small>{`${rs.length} ${t('labTimes')}`}</small>}
                    </td>
                    <td class="recognition">
                      <Recognised r={r.recognition} />
                      {r.recognition.recognised &&
                        (taken[r.id] ? (
                          <span class="taken">{t('recognitionTaken')}</span>
                        ) : (
                          <button type="button" onClick={() => take(r)}>
                            {t('takeRecognised')}
                          </button>
                        ))}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
