// Referrals (双向转诊): up to the lead hospital with the studies, followed through acceptance,
// the appointment slot, arrival and completion; the receiving side answers here too.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, personName, User } from './api';
import { dateTime, Key, t } from './i18n';
import { Live } from './live';
import { FormActions, StudyPicker } from './common';

interface Referral {
  id: number;
  direction: 'up' | 'down';
  urgency: 'routine' | 'urgent';
  status: string;
  patient: { id: string; name: string };
  from: string;
  to: string;
  requestedBy: string;
  reason: string;
  answer: string | null;
  slotDate: string | null;
  createdAt: string;
  answerDueAt: string;
}

const NEXT: Record<string, string[]> = {
  requested: ['accept', 'reject'],
  accepted: ['schedule'],
  scheduled: ['arrive'],
  arrived: ['complete'],
};

export function Referrals(props: { user: User; live: Live | null }) {
  const { user, live } = props;
  const [list, setList] = useState<Referral[]>([]);
  const [error, setError] = useState('');
  const [creating, setCreating] = useState(false);
  const load = () =>
    api<{ referrals: Referral[] }>('GET', '/api/referrals')
      .then((r) => setList(r.referrals))
      .catch((e) => setError(String(e)));
  useEffect(() => {
    load();
    return live?.on('notification', (m) => {
      if (String(m.kind).startsWith('referral')) load();
    });
  }, [live]);
  const act = async (id: number, action: string) => {
    const reason = action === 'reject' ? window.prompt(t('reason')) : undefined;
    if (action === 'reject' && !reason) return;
    try {
      await api('POST', `/api/referrals/${id}/${action}`, reason ? { reason } : {});
      load();
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  };
  return (
    <section class="referrals" aria-labelledby="referrals-title">
      <div class="toolbar">
        <h2 id="referrals-title">{t('referrals')}</h2>
        <button type="button" class="primary" onClick={() => setCreating(true)}>
          {t('referUp')}
        </button>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {creating && (
        <ReferUp
          user={user}
          onDone={() => {
            setCreating(false);
            load();
          }}
        />
      )}
      <table class="tasks">
        <thead>
          <tr>
            <th>{t('urgency')}</th>
            <th>{t('patient')}</th>
            <th>{t('direction')}</th>
            <th>{t('reason')}</th>
            <th>{t('status')}</th>
            <th>{t('slot')}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.map((r) => (
            <tr data-referral={r.id} data-status={r.status}>
              <td>
                <span class={`badge ${r.urgency}`}>{t(r.urgency as Key)}</span>
              </td>
              <td>
                {personName(r.patient.name) || r.patient.id}
                <small>{r.patient.id}</small>
                <a
                  class="lab-link"
                  href={`#/lab/${encodeURIComponent(r.patient.id)}/${encodeURIComponent(r.from)}`}
                >
                  {t('patientRecord')}
                </a>
              </td>
              <td>
                {r.from} → {r.to}
                <small>{t(r.direction === 'up' ? 'up' : 'down')}</small>
              </td>
              <td>
                {r.reason}
                {r.answer && <small>{r.answer}</small>}
              </td>
              <td class="status">{t(`ref_${r.status}` as Key)}</td>
              <td>{r.slotDate ?? ''}</td>
              <td>
                {r.to === user.institution &&
                  (NEXT[r.status] ?? []).map((a) => (
                    <button type="button" onClick={() => act(r.id, a)}>
                      {t(`act_${a}` as Key)}
                    </button>
                  ))}
                {r.from === user.institution &&
                  ['requested', 'accepted', 'scheduled'].includes(r.status) && (
                    <button type="button" onClick={() => act(r.id, 'cancel')}>
                      {t('cancel')}
                    </button>
                  )}
                <small>{dateTime(r.createdAt)}</small>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

interface Institution {
  code: string;
  name: string;
  level: string;
  parent: string | null;
}

function ReferUp(props: { user: User; onDone: () => void }) {
  const [patientId, setPatientId] = useState('');
  const [patientName, setPatientName] = useState('');
  const [reason, setReason] = useState('');
  const [urgency, setUrgency] = useState('routine');
  const [to, setTo] = useState('');
  const [chosen, setChosen] = useState<string[]>([]);
  const [error, setError] = useState('');
  const [institutions, setInstitutions] = useState<Institution[]>([]);
  useEffect(() => {
    // Up goes to the own institution's parent unless the doctor picks another.
    api<{ institutions: Institution[] }>('GET', '/api/institutions')
      .then((r) => {
        setInstitutions(r.institutions.filter((i) => i.code !== props.user.institution));
        const own = r.institutions.find((i) => i.code === props.user.institution);
        if (own?.parent) setTo(own.parent);
      })
      .catch(() => {});
  }, []);
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      await api('POST', '/api/referrals', {
        direction: 'up',
        toInstitution: to,
        urgency,
        patientId,
        patientName,
        reason,
        studies: chosen,
      });
      props.onDone();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };
  return (
    <form class="panel new-consult" onSubmit={submit} aria-label={t('referUp')}>
      <label>
        {t('patientId')}
        <input
          name="patientId"
          required
          value={patientId}
          onInput={(e) => setPatientId(e.currentTarget.value)}
        />
      </label>
      <label>
        {t('patient')}
        <input
          name="patientName"
          value={patientName}
          onInput={(e) => setPatientName(e.currentTarget.value)}
        />
      </label>
      <label class="wide">
        {t('reason')}
        <textarea
          name="reason"
          required
          rows={2}
          value={reason}
          onInput={(e) => setReason(e.currentTarget.value)}
        />
      </label>
      <label>
        {t('urgency')}
        <select name="urgency" value={urgency} onChange={(e) => setUrgency(e.currentTarget.value)}>
          <option value="routine">{t('routine')}</option>
          <option value="urgent">{t('urgent')}</option>
        </select>
      </label>
      <label>
        {t('toInstitution')}
        <select name="to" required value={to} onChange={(e) => setTo(e.currentTarget.value)}>
          <option value="">—</option>
          {institutions.map((i) => (
            <option value={i.code}>
              {i.name || i.code} ({i.code})
            </option>
          ))}
        </select>
      </label>
      <StudyPicker chosen={chosen} onChange={setChosen} />
      <FormActions error={error} onCancel={props.onDone} />
    </form>
  );
}
