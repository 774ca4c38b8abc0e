// Emergency alerts that must be acknowledged (a suspected STEMI to the on-call cardiologist, a
// stroke CT to the stroke on-call; escalated to back-ups when unanswered): shown over every
// screen until acknowledged with one tap, which is also the case's reading time point.
import { useEffect, useState } from 'preact/hooks';
import { api, personName } from './api';
import { reasonText } from './common';
import { dateTime, t } from './i18n';
import { clinicalName } from './emergency';
import { Live } from './live';

interface Alert {
  id: number; // the notification
  at: string;
  payload: {
    case: number;
    kind: string;
    reason: string;
    stage: string;
    institution: string;
    patient?: { id: string; name: string };
  };
}

export function Alerts(props: { live: Live | null }) {
  const { live } = props;
  const [alerts, setAlerts] = useState<Alert[]>([]);
  const [error, setError] = useState('');
  useEffect(() => {
    if (!live) return;
    const offAlert = live.on('notification', (m) => {
      if (m.kind !== 'alert') return;
      const a = { id: Number(m.id), at: String(m.at), payload: m.payload as Alert['payload'] };
      setAlerts((list) =>
        list.some((x) => x.payload.case === a.payload.case) ? list : [...list, a],
      );
    });
    // Someone else acknowledged: nothing is left to answer here.
    const offClosed = live.on('alert.closed', (m) => {
      setAlerts((list) => list.filter((x) => x.payload.case !== Number(m.case)));
    });
    return () => {
      offAlert();
      offClosed();
    };
  }, [live]);
  if (alerts.length === 0) return null;
  const ack = async (a: Alert) => {
    try {
      await api('POST', `/api/emergencies/${a.payload.case}/ack`);
      await api('POST', `/api/notifications/${a.id}/ack`).catch(() => {});
      setAlerts((list) => list.filter((x) => x.payload.case !== a.payload.case));
      setError('');
    } catch (e) {
      setError(String(e));
    }
  };
  return (
    <div class="alert-overlay" role="alertdialog" aria-label={t('emergencyAlert')}>
      {alerts.map((a) => (
        <section class="alert-card" data-case={a.payload.case}>
          <h2>
            {t('emergencyAlert')} · {clinicalName(a.payload.kind)}
            {a.payload.stage === 'escalation' && <span class="badge stat">{t('escalated')}</span>}
          </h2>
          <p>
            <strong>
              {a.payload.patient ? personName(a.payload.patient.name) || a.payload.patient.id : ''}
            </strong>{' '}
            · {a.payload.institution} · {dateTime(a.at)}
          </p>
          <p class="reason">{reasonText(a.payload.reason)}</p>
          <button type="button" class="primary big" onClick={() => ack(a)}>
            {t('acknowledgeAlert')}
          </button>{' '}
          <a href="#/emergency">{t('emergencyBoard')}</a>
        </section>
      ))}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
