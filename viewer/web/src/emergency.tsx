// The emergency board of the five centres (chest pain, stroke, trauma, critical maternal and
// newborn care): open cases with live clocks against their targets and one-tap time points,
// filtered by centre; a clinician opens a case for a patient here. Each case on the board is
// followed over /ws (`case.join`): time points recorded anywhere and breaches arrive as they
// happen. Closed cases (#/emergency/closed) are shown for review, a month of openings at a
// time, as they ended: their intervals met or breached, their time points, who was alerted;
// nothing is recorded there. One case alone (#/emergency/case/{id}, where the patient record
// links a closed case) is shown the same way, followed over /ws while it is open.
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
  kind: Kind;
  status: string;
  institution: string;
  patient: { id: string; name: string };
  source: string;
  reason: string;
  openedAt: string;
  closedAt: string | null;
  timePoints: Record<string, { at: string; by: string; note: string }>;
  intervals: Interval[];
}

export const KINDS = ['chest_pain', 'stroke', 'trauma', 'maternal', 'newborn'] as const;
type Kind = (typeof KINDS)[number];

const POINTS: Record<Kind, string[]> = {
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
  trauma: [
    'injury',
    'first_medical_contact',
    'transfer_door_in',
    'transfer_door_out',
    'door',
    'team_activation',
    'expert_response',
    'team_arrival',
    'ct',
    'transfusion',
    'operation',
  ],
  maternal: [
    'recognition',
    'expert_response',
    'transfer_door_in',
    'transfer_door_out',
    'door',
    'decision_to_deliver',
    'delivery',
    'transfusion',
  ],
  newborn: [
    'birth',
    'ventilation',
    'expert_response',
    'transport_request',
    'team_departure',
    'team_arrival',
    'transfer_door_out',
    'door',
  ],
};

// Clinical names, zh-CN and en.
const NAMES: Record<string, [string, string]> = {
  chest_pain: ['胸痛', 'Chest pain'],
  stroke: ['卒中', 'Stroke'],
  trauma: ['创伤', 'Trauma'],
  maternal: ['危重孕产妇', 'Critical maternal'],
  newborn: ['危重新生儿', 'Critical newborn'],
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
  injury: ['受伤', 'Injury'],
  team_activation: ['启动创伤团队', 'Trauma team activated'],
  expert_response: ['上级专家响应', 'Expert responded'],
  team_arrival: ['团队到位', 'Team arrived'],
  transfusion: ['开始输血', 'Transfusion started'],
  operation: ['急诊手术开始', 'Operation started'],
  recognition: ['识别危重', 'Recognised as critical'],
  decision_to_deliver: ['决定紧急剖宫产', 'Decision to deliver'],
  delivery: ['胎儿娩出', 'Delivery'],
  birth: ['出生', 'Birth'],
  ventilation: ['开始正压通气', 'Ventilation started'],
  transport_request: ['申请转运', 'Transport requested'],
  team_departure: ['转运团队出发', 'Transport team left'],
  team_response: ['启动→团队到位', 'Trauma team response'],
  door_to_operation: ['入门→手术', 'Door to operation'],
  decision_to_delivery: ['决定→娩出', 'Decision to delivery'],
  birth_to_ventilation: ['出生→正压通气', 'Birth to ventilation'],
};
export function clinicalName(key: string, interval = false): string {
  const k = interval && key === 'cath_lab_activation' ? 'cath_lab_activation_interval' : key;
  const n = NAMES[k];
  return n ? n[currentLang() === 'en' ? 1 : 0] : key;
}

// An interval's minutes now: as the hub computed them, or counting since its start (a closed
// case's clocks stopped when it closed).
function liveMinutes(c: Case, i: Interval, now: number): number | null {
  if (i.status !== 'running' || c.status !== 'open') return i.minutes;
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
        {minutes === null
          ? '—'
          : i.targetMinutes <= 5 // the golden minute and the like: in seconds
            ? `${Math.round(minutes * 60)} / ${i.targetMinutes * 60} s`
            : `${minutes.toFixed(1)} / ${i.targetMinutes} min`}
      </span>
    </li>
  );
}

// `correct`: the user is quality control, who correct a closed case's times.
function CaseCard(props: { c: Case; now: number; onChange: (c: Case) => void; correct?: boolean }) {
  const { c, now } = props;
  const [error, setError] = useState('');
  // A time point at a time other than now (symptom onset, a transfer's door-in, ...), with a note;
  // on a closed case, quality control's correction, whose note is required.
  const [earlier, setEarlier] = useState({ point: POINTS[c.kind][0], at: '', note: '' });
  // One action on the case: the case as the hub answers it, or the hub's reason shown; true when
  // it was done.
  const act = async (action: string, body?: unknown) => {
    try {
      props.onChange(await api<Case>('POST', `/api/emergencies/${c.id}/${action}`, body));
      setError('');
      return true;
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
      return false;
    }
  };
  const recordEarlier = async (e: Event) => {
    e.preventDefault();
    const at = new Date(earlier.at).toISOString();
    if (await act('time-points', { point: earlier.point, at, note: earlier.note }))
      setEarlier({ ...earlier, at: '', note: '' });
  };
  const record = async (point: string) => {
    if (c.timePoints[point] && !window.confirm(t('correctTimePoint'))) return;
    await act('time-points', { point });
  };
  const ack = () => act('ack');
  const close = () => act('close');
  const open = c.status === 'open';
  return (
    <article
      class={`case ${c.kind}${open ? '' : ' closed'}`}
      data-case={c.id}
      data-status={c.status}
      aria-labelledby={`case-${c.id}`}
    >
      <header>
        <span class="badge stat">{clinicalName(c.kind)}</span>
        <strong id={`case-${c.id}`}>{personName(c.patient.name) || c.patient.id}</strong>
        <span>{c.patient.id}</span>
        <span>{c.institution}</span>
        <span class="muted">{dateTime(c.openedAt)}</span>
        {!open && c.closedAt && (
          <span class="muted closed-at">
            {t('caseClosed')} {dateTime(c.closedAt)}
          </span>
        )}
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
          {!c.alert.acknowledgedBy && open && (
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
            disabled={!open}
            onClick={() => record(p)}
          >
            <span>{clinicalName(p)}</span>
            <small>
              {c.timePoints[p] ? dateTime(c.timePoints[p].at).slice(-5) : open ? t('tapNow') : '—'}
            </small>
          </button>
        ))}
      </div>
      {(open || props.correct) && (
        <details class="record-earlier">
          <summary>{t(open ? 'recordEarlier' : 'correctClosed')}</summary>
          <form onSubmit={recordEarlier}>
            <select
              name="point"
              aria-label={t('timePoints')}
              value={earlier.point}
              onChange={(e) => setEarlier({ ...earlier, point: e.currentTarget.value })}
            >
              {POINTS[c.kind].map((p) => (
                <option value={p}>{clinicalName(p)}</option>
              ))}
            </select>
            <label>
              {t('pointTime')}
              <input
                type="datetime-local"
                name="at"
                required
                value={earlier.at}
                onInput={(e) => setEarlier({ ...earlier, at: e.currentTarget.value })}
              />
            </label>
            <label>
              {t('correctionNote')}
              <input
                name="note"
                required={!open}
                value={earlier.note}
                onInput={(e) => setEarlier({ ...earlier, note: e.currentTarget.value })}
              />
            </label>
            <button type="submit" class="primary">
              {t('save')}
            </button>
          </form>
        </details>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {open && (
        <button type="button" onClick={close}>
          {t('closeCase')}
        </button>
      )}
    </article>
  );
}

// A case the clinician opens for a patient: its centre, the patient, why.
function OpenCase(props: { kind: Kind; onOpened: (c: Case) => void }) {
  const [form, setForm] = useState({
    kind: props.kind,
    patientId: '',
    patientName: '',
    reason: '',
  });
  const [error, setError] = useState('');
  useEffect(() => setForm((f) => ({ ...f, kind: props.kind })), [props.kind]);
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const c = await api<Case>('POST', '/api/emergencies', form);
      setForm({ ...form, patientId: '', patientName: '', reason: '' });
      setError('');
      props.onOpened(c);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };
  return (
    <details class="open-case">
      <summary>{t('openCase')}</summary>
      <form onSubmit={submit}>
        <label>
          {t('caseCentre')}
          <select
            name="kind"
            value={form.kind}
            onChange={(e) => setForm({ ...form, kind: e.currentTarget.value as Kind })}
          >
            {KINDS.map((k) => (
              <option value={k}>{clinicalName(k)}</option>
            ))}
          </select>
        </label>
        <label>
          {t('patientId')}
          <input
            name="patientId"
            required
            value={form.patientId}
            onInput={(e) => setForm({ ...form, patientId: e.currentTarget.value })}
          />
        </label>
        <label>
          {t('patientName')}
          <input
            name="patientName"
            value={form.patientName}
            onInput={(e) => setForm({ ...form, patientName: e.currentTarget.value })}
          />
        </label>
        <label>
          {t('reason')}
          <input
            name="reason"
            value={form.reason}
            onInput={(e) => setForm({ ...form, reason: e.currentTarget.value })}
          />
        </label>
        <button type="submit" class="primary">
          {t('openCase')}
        </button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </details>
  );
}

const CLOSED_PAGE = 100;

export function EmergencyBoard(props: { live: Live | null; closed?: boolean; correct?: boolean }) {
  const { live } = props;
  const closed = props.closed ?? false;
  const [cases, setCases] = useState<Case[]>([]);
  const [error, setError] = useState('');
  const [centre, setCentre] = useState<Kind | ''>('');
  const now = useNow();
  // For review: the cases opened in one month (local time) that have closed.
  const [month, setMonth] = useState(() => {
    const d = new Date();
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}`;
  });
  const period = () => {
    const [y, m] = month.split('-').map(Number);
    const from = new Date(y, m - 1, 1).toISOString();
    const to = new Date(y, m, 1).toISOString();
    return `&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
  };
  // The closed cases come a page at a time, the older ones on request.
  const [next, setNext] = useState<number | null>(null);
  const load = (before?: number) =>
    api<{ cases: Case[]; next: number | null }>(
      'GET',
      closed
        ? `/api/emergencies?status=closed${period()}&limit=${CLOSED_PAGE}` +
            (before ? `&before=${before}` : '')
        : '/api/emergencies?status=open',
    )
      .then((r) => {
        setCases((list) => (before ? [...list, ...r.cases] : r.cases));
        setNext(r.next);
      })
      .catch((e) => setError(String(e)));
  useEffect(() => {
    setCases([]);
    setNext(null);
    load();
    if (!live || closed) return;
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
      live.on('welcome', () => load()),
    ];
    return () => offs.forEach((off) => off());
  }, [live, closed, month]);
  // Follow every open case on the board.
  const ids = closed ? '' : cases.map((c) => c.id).join(',');
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
  // A case changed here: on the board a closed one leaves; in the review it stays (corrected).
  const replace = (c: Case) =>
    setCases((list) =>
      list.map((x) => (x.id === c.id ? c : x)).filter((x) => closed || x.status === 'open'),
    );
  const shown = centre ? cases.filter((c) => c.kind === centre) : cases;

  return (
    <section class="emergency" aria-labelledby="emergency-title">
      <h2 id="emergency-title">{t('emergencyBoard')}</h2>
      <nav class="tabs" aria-label={t('emergencyBoard')}>
        <a href="#/emergency" class={closed ? '' : 'on'} aria-current={!closed}>
          {t('caseOpen')}
        </a>
        <a
          href="#/emergency/closed"
          class={closed ? 'on' : ''}
          aria-current={closed}
          data-view="closed"
        >
          {t('casesClosed')}
        </a>
        {closed && (
          <label>
            {t('openedInMonth')}
            <input
              type="month"
              name="month"
              value={month}
              onChange={(e) => e.currentTarget.value && setMonth(e.currentTarget.value)}
            />
          </label>
        )}
      </nav>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="centres" role="group" aria-label={t('caseCentre')}>
        {(['', ...KINDS] as const).map((k) => (
          <button
            type="button"
            class={centre === k ? 'centre selected' : 'centre'}
            data-centre={k || 'all'}
            aria-pressed={centre === k}
            onClick={() => setCentre(k)}
          >
            {k ? clinicalName(k) : t('allCentres')}
            <small>{cases.filter((c) => !k || c.kind === k).length}</small>
          </button>
        ))}
      </div>
      {!closed && (
        <OpenCase
          kind={centre || KINDS[0]}
          onOpened={(c) => {
            setCases((list) => [c, ...list.filter((x) => x.id !== c.id)]);
            setCentre(c.kind);
          }}
        />
      )}
      {shown.length === 0 && <p class="empty">{t(closed ? 'noClosedCases' : 'noCases')}</p>}
      <div class="cases">
        {shown.map((c) => (
          <CaseCard c={c} now={now} onChange={replace} correct={props.correct} />
        ))}
      </div>
      {closed && next !== null && (
        <button type="button" class="older" onClick={() => void load(next)}>
          {t('older')}
        </button>
      )}
    </section>
  );
}

// One case on its own screen: a closed one for review (read-only, as on the closed tab), an open
// one worked as on the board and followed over /ws.
export function CaseReview(props: { id: number; live: Live | null; correct?: boolean }) {
  const { id, live } = props;
  const [c, setCase] = useState<Case | null>(null);
  const [error, setError] = useState('');
  const now = useNow();
  useEffect(() => {
    setCase(null);
    setError('');
    api<Case>('GET', `/api/emergencies/${id}`)
      .then(setCase)
      .catch((e) =>
        setError(e instanceof ApiError && e.status === 404 ? t('noSuchCase') : String(e)),
      );
  }, [id]);
  const open = c?.status === 'open';
  useEffect(() => {
    if (!live || !open) return;
    const follow = () => live.send({ type: 'case.join', case: id });
    follow();
    const offs = [
      live.on('welcome', follow),
      live.on('case', (m) => {
        const next = m.case as Case;
        if (next.id === id) setCase(next);
      }),
    ];
    return () => {
      offs.forEach((off) => off());
      live.send({ type: 'case.leave', case: id });
    };
  }, [live, id, open]);
  return (
    <section class="emergency review" aria-labelledby="emergency-title">
      <h2 id="emergency-title">{t('emergencyBoard')}</h2>
      <nav class="tabs" aria-label={t('emergencyBoard')}>
        <a href="#/emergency">{t('caseOpen')}</a>
        <a href="#/emergency/closed">{t('casesClosed')}</a>
        {c?.patient.id && (
          <a
            class="lab-link"
            href={`#/lab/${encodeURIComponent(c.patient.id)}/${encodeURIComponent(c.institution)}`}
          >
            {t('patientRecord')}
          </a>
        )}
      </nav>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {c && (
        <div class="cases">
          <CaseCard c={c} now={now} onChange={setCase} correct={props.correct} />
        </div>
      )}
    </section>
  );
}
