// The header's notification list: pushes kept until acknowledged (new consult requests, STAT
// tasks, critical results, emergencies, referral changes), each linking to its screen.
import { useEffect, useState } from 'preact/hooks';
import { api, personName } from './api';
import { dateTime, Key, t } from './i18n';
import { Live } from './live';

interface Notification {
  id: number;
  kind: string;
  at: string;
  payload: Record<string, unknown> & { patient?: { id: string; name: string } };
}

function link(n: Notification): string {
  const p = n.payload;
  switch (n.kind) {
    case 'consult_request':
      return `#/consult/${p.consult}`;
    case 'stat_task':
      return `#/read/${p.task}`;
    case 'critical_result':
      return `#/report/${p.task}`;
    case 'emergency':
    case 'breach':
      return '#/emergency';
    default:
      return '#/referrals';
  }
}

export function Notifications(props: { live: Live | null }) {
  const { live } = props;
  const [pending, setPending] = useState(0);
  const [open, setOpen] = useState(false);
  const [list, setList] = useState<Notification[]>([]);
  const load = () =>
    api<{ pending: number; notifications: Notification[] }>('GET', '/api/notifications?limit=50')
      .then((r) => {
        setPending(r.pending);
        setList(r.notifications);
      })
      .catch(() => {});
  useEffect(() => {
    if (!live) return;
    const offs = [
      live.on('welcome', (m) => setPending(Number(m.pendingNotifications ?? 0))),
      live.on('notification', () => (open ? load() : setPending((n) => n + 1))),
    ];
    return () => offs.forEach((off) => off());
  }, [live, open]);
  useEffect(() => {
    if (open) load();
  }, [open]);

  const ack = async (id: number) => {
    await api('POST', `/api/notifications/${id}/ack`).catch(() => {});
    load();
  };
  const ackAll = async () => {
    if (list.length) await api('POST', '/api/notifications/ack', { upTo: list[0].id });
    load();
  };
  return (
    <span class="notifications">
      <button
        type="button"
        class="pending"
        aria-expanded={open}
        data-pending={pending}
        onClick={() => setOpen((o) => !o)}
      >
        {t('notifications')} {pending}
      </button>
      {open && (
        <div class="panel notification-list" role="dialog" aria-label={t('notifications')}>
          {list.length === 0 && <p class="empty">—</p>}
          <ul>
            {list.map((n) => (
              <li data-kind={n.kind}>
                <a href={link(n)} onClick={() => setOpen(false)}>
                  <strong>{t(`n_${n.kind}` as Key)}</strong>{' '}
                  {n.payload.patient
                    ? personName(n.payload.patient.name) || n.payload.patient.id
                    : ''}
                </a>
                <small>{dateTime(n.at)}</small>
                <button type="button" onClick={() => ack(n.id)}>
                  {t('acknowledge')}
                </button>
              </li>
            ))}
          </ul>
          {list.length > 0 && (
            <button type="button" class="primary" onClick={ackAll}>
              {t('acknowledgeAll')}
            </button>
          )}
        </div>
      )}
    </span>
  );
}
