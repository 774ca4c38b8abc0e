// The emergency board (chest pain, stroke): open cases with live clocks against their targets
// and one-tap time points. Each case on the board is followed over /ws (`case.join`): time
// points recorded anywhere and breaches arrive as they happen.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, personName } from './api';
import { reasonText, useNow } from './common';
import { currentLang, dateTime, t } from './i18n';
import { Live } from './live';

interface Interval {
  name: string;
  from: string;
  to: string;
  targetMinutes: number;
  minutes: number | null;
  status: 'pending' | 'running' | 'met' | 'breached';
}
export interface Case {
  id: number;
  alert?: {
    service: string | null;
    alerted: { user: string; stage: string; at: string }[];
    acknowledgedBy: string | null;
    acknowledgedAt: string | null;
    escalatedAt: string | null;
  };
  kind: 'chest_pain' | 'stroke';
  status: string;
  institution: string;
  patient: { id: string; name: string };
  source: string;
  reason: string;
  openedAt: string;
  timePoints: Record<string, { at: string; by: string; note: string }>;
  intervals: Interval[];
}

const POINTS: Record<Case['kind'], string[]> = {
  chest_pain: [
    'symptom_onset',
    'first_medical_contact',
    'first_ecg',
    'ecg_transmitted',
    'ecg_read',
    'diagnosis',
    'transfer_door_in',
    'transfer_door_out',
    'door',
    'cath_lab_activation',
    'wire_crossing',
    'thrombolysis',
  ],
  stroke: ['symptom_onset', 'door', 'ct', 'ct_read', 'needle', 'puncture'],
};

// Clinical names, zh-CN and en.
const NAMES: Record<string, [string, string]> = {
  chest_pain: ['胸痛', 'Chest pain'],
  stroke: ['卒中', 'Stroke'],
  symptom_onset: ['发病', 'Symptom onset'],
  first_medical_contact: ['首次医疗接触', 'First medical contact'],
  first_ecg: ['首份心电图', 'First ECG'],
  ecg_transmitted: ['心电图传输', 'ECG transmitted'],
  ecg_read: ['心电图判读', 'ECG read'],
  diagnosis: ['确诊', 'Diagnosis'],
  transfer_door_in: ['转出医院入门', 'Transfer: door in'],
  transfer_door_out: ['转出医院出门', 'Transfer: door out'],
  door: ['到达本院', 'Door'],
  cath_lab_activation: ['激活导管室', 'Cath lab activated'],
  wire_crossing: ['导丝通过', 'Wire crossing'],
  thrombolysis: ['溶栓', 'Thrombolysis'],
  ct: ['CT完成', 'CT'],
  ct_read: ['CT判读', 'CT read'],
  needle: ['静脉溶栓', 'Needle'],
  puncture: ['股动脉穿刺', 'Puncture'],
  fmc_to_ecg: ['首次医疗接触→心电图', 'FMC to ECG'],
  ecg_to_diagnosis: ['心电图→确诊', 'ECG to diagnosis'],
  door_in_door_out: ['入门→出门', 'Door in, door out'],
  cath_lab_activation_interval: ['确诊→激活导管室', 'Cath lab activation'],
  door_to_balloon: ['入门→导丝通过', 'Door to balloon'],
  door_to_ct: ['入门→CT', 'Door to CT'],
  door_to_needle: ['入门→溶栓', 'Door to needle'],
};
export function clinicalName(key: string, interval = false): string {
  const k = interval && key === 'cath_lab_activation' ? 'cath_lab_activation_interval' : key;
  const n = NAMES[k];
  return n ? n[currentLang() === 'en' ? 1 : 0] : key;
}

// An interval's minutes now: as the hub computed them, or counting since its start.
function liveMinutes(c: Case, i: Interval, now: number): number | null {
  if (i.status !== 'running') return i.minutes;
  const start = c.timePoints[i.from]?.at;
  return start ? Math.max(0, now - Date.parse(start)) / 60000 : i.minutes;
}

function Clock({ c, i, now }: { c: Case; i: Interval; now: number }) {
  const minutes = liveMinutes(c, i, now);
  const over = minutes !== null && minutes > i.targetMinutes;
  const status = i.status === 'running' && over ? 'breached' : i.status;
  const near =
    i.status === 'running' && !over && minutes !== null && minutes > i.targetMinutes * 0.75;
  return (
    <li class={`clock ${status}${near ? ' near' : ''}`} data-interval={i.name} data-status={status}>
      <span class="name">{clinicalName(i.name, true)}</span>
      <span class="value">
        {minutes === null ? '—' : `${minutes.toFixed(1)} / ${i.targetMinutes} min`}
      </span>
    </li>
  );
}

function CaseCard(props: { c: Case; now: number; onChange: (c: Case) => void }) {
  const { c, now } = props;
  const [error, setError] = useState('');
  const record = async (point: string) => {
    if (c.timePoints[point] && !window.confirm(t('correctTimePoint'))) return;
    try {
      props.onChange(await api<Case>('POST', `/api/emergencies/${c.id}/time-points`, { point }));
      setError('');
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  };
  const ack = async () => {
    try {
      props.onChange(await api<Case>('POST', `/api/emergencies/${c.id}/ack`));
      setError('');
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  };
  const close = async () => {
    try {
      props.onChange(await api<Case>('POST', `/api/emergencies/${c.id}/close`));
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  };
  return (
    <article class={`case ${c.kind}`} data-case={c.id} aria-labelledby={`case-${c.id}`}>
      <header>
        <span class="badge stat">{clinicalName(c.kind)}</span>
        <strong id={`case-${c.id}`}>{personName(c.patient.name) || c.patient.id}</strong>
        <span>{c.patient.id}</span>
        <span>{c.institution}</span>
        <span class="muted">{dateTime(c.openedAt)}</span>
      </header>
      {c.reason && <p class="reason">{reasonText(c.reason)}</p>}
      {c.alert && c.alert.alerted.length > 0 && (
        <p class="alert-trail" data-acknowledged={c.alert.acknowledgedBy ?? ''}>
          {t('alerted')}:{' '}
          {c.alert.alerted
            .map(
              (a) =>
                `${a.user} (${t(a.stage === 'on_call' ? 'onCall' : 'escalated')} ${dateTime(a.at).slice(-5)})`,
            )
            .join(', ')}
          {' · '}
          {c.alert.acknowledgedBy
            ? `${t('acknowledgedBy')} ${c.alert.acknowledgedBy} ${dateTime(c.alert.acknowledgedAt).slice(-5)}`
            : t('notAcknowledged')}
          {!c.alert.acknowledgedBy && (
            <button type="button" class="primary" onClick={ack}>
              {t('acknowledgeAlert')}
            </button>
          )}
        </p>
      )}
      <ul class="clocks">
        {c.intervals.map((i) => (
          <Clock c={c} i={i} now={now} />
        ))}
      </ul>
      <div class="points" role="group" aria-label={t('timePoints')}>
        {POINTS[c.kind].map((p) => (
          <button
            type="button"
            class={c.timePoints[p] ? 'point done' : 'point'}
            data-point={p}
            onClick={() => record(p)}
          >
            <span>{clinicalName(p)}</span>
            <small>{c.timePoints[p] ? dateTime(c.timePoints[p].at).slice(-5) : t('tapNow')}</small>
          </button>
        ))}
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <button type="button" onClick={close}>
        {t('closeCase')}
      </button>
    </article>
  );
}

export function EmergencyBoard(props: { live: Live | null }) {
  const { live } = props;
  const [cases, setCases] = useState<Case[]>([]);
  const [error, setError] = useState('');
  const now = useNow();
  const load = () =>
    api<{ cases: Case[] }>('GET', '/api/emergencies?status=open')
      .then((r) => setCases(r.cases))
      .catch((e) => setError(String(e)));
  useEffect(() => {
    load();
    if (!live) return;
    const offs = [
      live.on('notification', (m) => {
        if (m.kind === 'emergency' || m.kind === 'breach' || m.kind === 'alert') load();
      }),
      live.on('case', (m) => {
        const c = m.case as Case;
        setCases((list) =>
          list.map((x) => (x.id === c.id ? c : x)).filter((x) => x.status === 'open'),
        );
      }),
      live.on('welcome', load),
    ];
    return () => offs.forEach((off) => off());
  }, [live]);
  // Follow every case on the board.
  const ids = cases.map((c) => c.id).join(',');
  useEffect(() => {
    if (!live) return;
    const list = ids ? ids.split(',').map(Number) : [];
    const follow = () => list.forEach((id) => live.send({ type: 'case.join', case: id }));
    follow();
    // A new connection follows nothing: again after every reconnect.
    const off = live.on('welcome', follow);
    return () => {
      off();
      list.forEach((id) => live.send({ type: 'case.leave', case: id }));
    };
  }, [live, ids]);
  const replace = (c: Case) =>
    setCases((list) => list.map((x) => (x.id === c.id ? c : x)).filter((x) => x.status === 'open'));

  return (
    <section class="emergency" aria-labelledby="emergency-title">
      <h2 id="emergency-title">{t('emergencyBoard')}</h2>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {cases.length === 0 && <p class="empty">{t('noCases')}</p>}
      <div class="cases">
        {cases.map((c) => (
          <CaseCard c={c} now={now} onChange={replace} />
        ))}
      </div>
    </section>
  );
}
