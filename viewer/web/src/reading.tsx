// A task being read: the viewer with the report editor beside it. Opening a task one may claim
// claims it; the claim is kept alive by heartbeats while the screen is open.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, personName, TaskDetail, User } from './api';
import { AdvancedViewerButton, PriorityBadge, reasonText, statusText } from './common';
import { dateTime, t } from './i18n';
import { Live } from './live';
import { ReportEditor } from './report';
import { ImageViewer } from './viewer';
import { ecgInstance, EcgViewer } from './ecg';

interface Prior {
  studyInstanceUid: string;
  studyDate: string;
  modalities: string;
  description: string;
  institution: string;
  impression: string;
}

export function Reading(props: { taskId: number; user: User; live: Live | null }) {
  const { taskId, user } = props;
  const [task, setTask] = useState<TaskDetail | null>(null);
  const [error, setError] = useState('');
  const [priors, setPriors] = useState<Prior[]>([]);
  const [prior, setPrior] = useState('');
  const [lowBandwidth, setLowBandwidth] = useState(localStorage.getItem('yilian.low') === '1');

  const load = async () => {
    try {
      let d = await api<TaskDetail>('GET', `/api/tasks/${taskId}`);
      if (d.status === 'queued') {
        await api('POST', `/api/tasks/${taskId}/claim`);
        d = await api<TaskDetail>('GET', `/api/tasks/${taskId}`);
      }
      setTask(d);
      setError('');
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  };
  useEffect(() => {
    load();
    setPrior('');
    api<{ priors: Prior[] }>('GET', `/api/tasks/${taskId}/priors`)
      .then((r) => setPriors(r.priors))
      .catch(() => setPriors([]));
  }, [taskId]);

  // A study still arriving: its task's events bring the new instance count to the viewer.
  const arriving = task?.arriving === true;
  useEffect(() => {
    if (!arriving || !props.live) return;
    return props.live.on('task', (m) => {
      if (m.task === taskId) load();
    });
  }, [arriving, props.live, taskId]);

  const mine = task?.claimedBy === user.username;
  useEffect(() => {
    if (!mine || task?.status === 'final') return;
    const id = window.setInterval(() => {
      api('POST', `/api/tasks/${taskId}/heartbeat`).catch(() => {});
    }, 60000);
    return () => window.clearInterval(id);
  }, [mine, task?.status, taskId]);

  const release = async () => {
    try {
      await api('POST', `/api/tasks/${taskId}/release`);
      location.hash = '#/worklist';
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  };

  if (error && !task) {
    return (
      <p class="error" role="alert">
        {error}
      </p>
    );
  }
  if (!task) return <p class="loading">{t('loading')}</p>;
  return (
    <div class="reading">
      <div class="task-bar">
        <a href="#/worklist">← {t('back')}</a>
        <PriorityBadge task={task} />
        <strong>{personName(task.patient.name) || task.patient.id}</strong>
        <span>{task.patient.id}</span>
        <span>{task.modalities}</span>
        <span>{task.description}</span>
        <span>{task.institution}</span>
        <span>{dateTime(task.receivedAt)}</span>
        <span class="status">{statusText(task.status)}</span>
        {task.arriving && (
          <span class="arriving" data-arriving={task.instances}>
            {t('arrivingSoFar')} {task.instances} {t('imagesSoFar')}
          </span>
        )}
        {task.priorityReason && <span class="reason">{reasonText(task.priorityReason)}</span>}
        {(task.clinicalQuestion || task.indication) && (
          <span class="question" title={t('clinicalQuestion')}>
            {t('clinicalQuestion')}: {task.clinicalQuestion || task.indication}
          </span>
        )}
        <span class="spacer" />
        {task.kind === 'imaging' && (
          <AdvancedViewerButton study={task.studyInstanceUid} modalities={task.modalities} />
        )}
        <label class="check">
          <input
            type="checkbox"
            checked={lowBandwidth}
            onChange={(e) => {
              setLowBandwidth(e.currentTarget.checked);
              localStorage.setItem('yilian.low', e.currentTarget.checked ? '1' : '0');
            }}
          />
          {t('lowBandwidth')}
        </label>
        {priors.length > 0 && (
          <label>
            {t('priors')} ({priors.length})
            <select name="prior" value={prior} onChange={(e) => setPrior(e.currentTarget.value)}>
              <option value="">—</option>
              {priors.map((p) => (
                <option value={p.studyInstanceUid}>
                  {p.studyDate} · {p.modalities} · {p.description} · {p.institution}
                </option>
              ))}
            </select>
          </label>
        )}
        {mine && task.status !== 'final' && (
          <button type="button" onClick={release}>
            {t('release')}
          </button>
        )}
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="reading-body">
        {task.kind === 'ecg' ? (
          <EcgReading study={task.studyInstanceUid} />
        ) : (
          <div class="viewers">
            <ImageViewer
              study={task.studyInstanceUid}
              lowBandwidth={lowBandwidth}
              arrived={task.instances}
            />
            {prior && (
              <div class="prior">
                <ImageViewer study={prior} lowBandwidth={lowBandwidth} />
                <p class="prior-impression">
                  {t('priors')}:{' '}
                  {priors.find((p) => p.studyInstanceUid === prior)?.impression || '—'}
                </p>
              </div>
            )}
          </div>
        )}
        <ReportEditor task={task} mine={mine} onSaved={load} />
      </div>
      <p class="hint">{t('shortcuts')}</p>
    </div>
  );
}

function EcgReading(props: { study: string }) {
  const [instance, setInstance] = useState('');
  const [error, setError] = useState('');
  useEffect(() => {
    ecgInstance(props.study)
      .then(setInstance)
      .catch((e) => setError(String(e)));
  }, [props.study]);
  if (error) return <p class="error">{error}</p>;
  return instance ? <EcgViewer instance={instance} /> : <p class="loading">{t('loading')}</p>;
}
