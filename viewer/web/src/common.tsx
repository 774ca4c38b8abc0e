// Small pieces the screens share: priority badges, SLA countdowns, a ticking clock.
import { useEffect, useState } from 'preact/hooks';
import { Task } from './api';
import { duration, Key, t } from './i18n';

export function useNow(periodMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = window.setInterval(() => setNow(Date.now()), periodMs);
    return () => window.clearInterval(id);
  }, [periodMs]);
  return now;
}

export const isStemi = (task: Task) => /stemi/i.test(task.priorityReason);

export function PriorityBadge({ task }: { task: Task }) {
  return (
    <span class="badges">
      <span class={`badge ${task.priority}`}>{t(task.priority as Key)}</span>
      {isStemi(task) && <span class="badge stemi">{t('stemi')}</span>}
    </span>
  );
}

export function Countdown({ task, now }: { task: Task; now: number }) {
  if (task.status === 'final') return <span>—</span>;
  const left = Date.parse(task.dueAt) - now;
  if (left < 0) return <span class="sla overdue">{`${t('overdue')} ${duration(left)}`}</span>;
  return (
    <span class={task.nearDue ? 'sla near' : 'sla'}>{`${t('remaining')} ${duration(left)}`}</span>
  );
}

export function statusText(s: string): string {
  return ['queued', 'claimed', 'preliminary', 'final'].includes(s) ? t(s as Key) : s;
}
