// The reading worklist: most urgent first, SLA countdowns, filters, claim-next on N; refreshed
// whenever /ws says a task changed.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, ApiError, personName, Task, User } from './api';
import { AdvancedViewerButton, Countdown, PriorityBadge, statusText, useNow } from './common';
import { dateTime, t } from './i18n';
import { Live } from './live';

export function Worklist(props: { user: User; live: Live | null }) {
  const [tasks, setTasks] = useState<Task[]>([]);
  const [error, setError] = useState('');
  const [loaded, setLoaded] = useState(false);
  const [service, setService] = useState('');
  const [priority, setPriority] = useState('');
  const [institution, setInstitution] = useState('');
  const [overdue, setOverdue] = useState(false);
  const [selected, setSelected] = useState(0);
  const now = useNow();

  const load = async () => {
    const q = new URLSearchParams({ limit: '200' });
    if (priority) q.set('priority', priority);
    if (overdue) q.set('overdue', 'true');
    try {
      const r = await api<{ total: number; tasks: Task[] }>('GET', `/api/worklist?${q}`);
      setTasks(r.tasks);
      setError('');
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setLoaded(true);
    }
  };

  useEffect(() => {
    load();
    const id = window.setInterval(load, 30000);
    // Every change of a task, and everything missed while the connection was down.
    const offs = [props.live?.on('task', () => load()), props.live?.on('welcome', () => load())];
    return () => {
      window.clearInterval(id);
      offs.forEach((off) => off?.());
    };
  }, [props.live, priority, overdue]);

  const shown = useMemo(
    () =>
      tasks.filter(
        (x) =>
          (!service || x.service === service) && (!institution || x.institution === institution),
      ),
    [tasks, service, institution],
  );
  const services = [...new Set(tasks.map((x) => x.service))].sort();
  const institutions = [...new Set(tasks.map((x) => x.institution))].sort();

  const claimNext = async () => {
    try {
      const r = await api<{ task: Task | null }>('POST', '/api/worklist/claim-next');
      if (r.task) location.hash = `#/read/${r.task.id}`;
      else setError(t('noTasks'));
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  };

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement;
      if (['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName)) return;
      if (e.key === 'n' || e.key === 'N') {
        e.preventDefault();
        claimNext();
      } else if (e.key === 'ArrowDown') {
        e.preventDefault();
        setSelected((i) => Math.min(i + 1, shown.length - 1));
      } else if (e.key === 'ArrowUp') {
        e.preventDefault();
        setSelected((i) => Math.max(i - 1, 0));
      } else if (e.key === 'Enter' && shown[selected]) {
        location.hash = `#/read/${shown[selected].id}`;
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [shown, selected]);

  return (
    <section class="worklist" aria-labelledby="worklist-title">
      <div class="toolbar">
        <h2 id="worklist-title">{t('worklist')}</h2>
        <button type="button" class="primary" onClick={claimNext} title={t('claimNextHint')}>
          {t('claimNext')} (N)
        </button>
        <label>
          {t('service')}
          <select value={service} onChange={(e) => setService(e.currentTarget.value)}>
            <option value="">{t('all')}</option>
            {services.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          {t('priority')}
          <select value={priority} onChange={(e) => setPriority(e.currentTarget.value)}>
            <option value="">{t('all')}</option>
            <option value="stat">{t('stat')}</option>
            <option value="urgent">{t('urgent')}</option>
            <option value="routine">{t('routine')}</option>
          </select>
        </label>
        <label>
          {t('institution')}
          <select value={institution} onChange={(e) => setInstitution(e.currentTarget.value)}>
            <option value="">{t('all')}</option>
            {institutions.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label class="check">
          <input
            type="checkbox"
            checked={overdue}
            onChange={(e) => setOverdue(e.currentTarget.checked)}
          />
          {t('overdueOnly')}
        </label>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {loaded && shown.length === 0 && <p class="empty">{t('noTasks')}</p>}
      {shown.length > 0 && (
        <table class="tasks">
          <thead>
            <tr>
              <th>{t('priority')}</th>
              <th>{t('patient')}</th>
              <th>{t('modality')}</th>
              <th>{t('institution')}</th>
              <th>{t('received')}</th>
              <th>{t('due')}</th>
              <th>{t('status')}</th>
              <th>{t('reader')}</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((task, i) => (
              <tr
                key={task.id}
                data-task={task.id}
                class={`${i === selected ? 'selected' : ''} ${task.priority} ${task.overdue ? 'overdue' : ''}`}
                aria-selected={i === selected}
                onClick={() => setSelected(i)}
                onDblClick={() => (location.hash = `#/read/${task.id}`)}
              >
                <td>
                  <PriorityBadge task={task} />
                </td>
                <td>
                  <a href={`#/read/${task.id}`}>
                    {personName(task.patient.name) || task.patient.id}
                  </a>
                  <small>{task.patient.id}</small>
                </td>
                <td>
                  {task.modalities}
                  {task.kind === 'imaging' && (
                    <AdvancedViewerButton
                      study={task.studyInstanceUid}
                      modalities={task.modalities}
                    />
                  )}
                  <small>{task.description}</small>
                  {task.clinicalQuestion && <small class="question">{task.clinicalQuestion}</small>}
                </td>
                <td>{task.institution}</td>
                <td>{dateTime(task.receivedAt)}</td>
                <td>
                  <Countdown task={task} now={now} />
                </td>
                <td>
                  {statusText(task.status)}
                  {task.arriving && (
                    <small class="arriving" data-arriving={task.instances}>
                      {t('arrivingSoFar')} {task.instances} {t('imagesSoFar')}
                    </small>
                  )}
                </td>
                <td>{task.claimedBy ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
