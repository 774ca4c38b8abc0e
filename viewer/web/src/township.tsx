// The township doctor's screens: the institution's studies and their status, live; critical
// results to acknowledge; a final report with its images.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, image, personName, Task, TaskDetail, User } from './api';
import { AdvancedViewerButton, Countdown, PriorityBadge, statusText, useNow } from './common';
import { ecgInstance } from './ecg';
import { currentLang, dateTime, t } from './i18n';
import { Live } from './live';
import { latestReport } from './report';
import { ImageViewer } from './viewer';
import { SendStudy } from './send';

// The signed 12-lead page as the hub renders it (the reader's impression, who signed and
// when, in Chinese unless the screen is in English), to look at and to print or file.
function SignedEcgPage(props: { study: string; reportId: number; patient: string }) {
  const [url, setUrl] = useState('');
  const [error, setError] = useState('');
  useEffect(() => {
    let made = '';
    const lang = currentLang() === 'en' ? 'en' : 'zh';
    ecgInstance(props.study)
      .then((sop) => image(`/api/ecg/${sop}/render?lang=${lang}`, 'image/png'))
      .then((blob) => {
        made = URL.createObjectURL(blob);
        setUrl(made);
      })
      .catch((e) => setError(String(e)));
    return () => {
      if (made) URL.revokeObjectURL(made);
    };
  }, [props.study, props.reportId]);
  // The PDF prints at true size (25 mm/s, 10 mm/mV) when printed at "actual size".
  const downloadPdf = async () => {
    try {
      const lang = currentLang() === 'en' ? 'en' : 'zh';
      const sop = await ecgInstance(props.study);
      const blob = await image(`/api/ecg/${sop}/render?lang=${lang}&format=pdf`, 'application/pdf');
      const link = document.createElement('a');
      link.href = URL.createObjectURL(blob);
      link.download = `ecg-${props.patient}.pdf`;
      link.click();
      window.setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch (e) {
      setError(String(e));
    }
  };
  if (error) return <p class="error">{error}</p>;
  if (!url) return <p class="loading">{t('loading')}</p>;
  return (
    <figure class="signed-ecg">
      <figcaption>
        {t('signedEcgPage')} ·{' '}
        <a href={url} download={`ecg-${props.patient}.png`}>
          {t('downloadPng')}
        </a>{' '}
        ·{' '}
        <button type="button" class="link" name="download-pdf" onClick={downloadPdf}>
          {t('downloadPdf')}
        </button>
      </figcaption>
      <img src={url} alt={t('signedEcgPage')} data-report={props.reportId} />
    </figure>
  );
}

interface CriticalResult {
  id: number;
  taskId: number;
  impression: string;
  createdAt: string;
  acknowledgedBy: string | null;
}

function CriticalResults(props: { live: Live | null; taskId?: number }) {
  const [list, setList] = useState<CriticalResult[]>([]);
  const [error, setError] = useState('');
  const load = () =>
    api<{ criticalResults: CriticalResult[] }>('GET', '/api/critical-results?open=true')
      .then((r) =>
        setList(r.criticalResults.filter((c) => !props.taskId || c.taskId === props.taskId)),
      )
      .catch((e) => setError(String(e)));
  useEffect(() => {
    load();
    return props.live?.on('task', load);
  }, [props.live]);
  const ack = async (id: number) => {
    try {
      await api('POST', `/api/critical-results/${id}/acknowledge`);
      load();
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  };
  if (list.length === 0 && !error) return null;
  return (
    <section class="critical-results" role="alert" aria-labelledby="critical-title">
      <h3 id="critical-title">{t('criticalResults')}</h3>
      {error && <p class="error">{error}</p>}
      <ul>
        {list.map((c) => (
          <li>
            <a href={`#/report/${c.taskId}`}>{c.impression}</a> · {dateTime(c.createdAt)}
            <button type="button" class="primary" onClick={() => ack(c.id)}>
              {t('acknowledge')}
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

function TaskTable({ tasks, now }: { tasks: Task[]; now: number }) {
  return (
    <table class="tasks">
      <thead>
        <tr>
          <th>{t('priority')}</th>
          <th>{t('patient')}</th>
          <th>{t('modality')}</th>
          <th>{t('received')}</th>
          <th>{t('due')}</th>
          <th>{t('status')}</th>
        </tr>
      </thead>
      <tbody>
        {tasks.map((task) => (
          <tr key={task.id} data-task={task.id} data-status={task.status}>
            <td>
              <PriorityBadge task={task} />
            </td>
            <td>
              <a href={`#/report/${task.id}`}>{personName(task.patient.name) || task.patient.id}</a>
              <small>{task.patient.id}</small>
            </td>
            <td>
              {task.modalities}
              <small>{task.description}</small>
            </td>
            <td>{dateTime(task.receivedAt)}</td>
            <td>
              <Countdown task={task} now={now} />
            </td>
            <td class="status">{statusText(task.status)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Township(props: { user: User; live: Live | null }) {
  const [active, setActive] = useState<Task[]>([]);
  const [done, setDone] = useState<Task[]>([]);
  const [error, setError] = useState('');
  const now = useNow();
  const load = async () => {
    try {
      const [a, f] = await Promise.all([
        api<{ tasks: Task[] }>('GET', '/api/worklist?limit=200'),
        api<{ tasks: Task[] }>('GET', '/api/worklist?status=final&limit=100'),
      ]);
      setActive(a.tasks);
      setDone(f.tasks);
      setError('');
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  useEffect(() => {
    load();
    const id = window.setInterval(load, 30000);
    const offs = [props.live?.on('task', () => load()), props.live?.on('welcome', () => load())];
    return () => {
      window.clearInterval(id);
      offs.forEach((off) => off?.());
    };
  }, [props.live]);
  return (
    <section class="township" aria-labelledby="township-title">
      <h2 id="township-title">
        {t('township')} · {props.user.institution}
      </h2>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <CriticalResults live={props.live} />
      <SendStudy onSent={load} />
      <h3>{t('inProgress')}</h3>
      {active.length ? <TaskTable tasks={active} now={now} /> : <p class="empty">—</p>}
      <h3>{t('finalReports')}</h3>
      <div class="final-list">
        {done.length ? <TaskTable tasks={done} now={now} /> : <p class="empty">—</p>}
      </div>
    </section>
  );
}

export function ReportView(props: { taskId: number; live: Live | null }) {
  const [task, setTask] = useState<TaskDetail | null>(null);
  const [error, setError] = useState('');
  const load = () =>
    api<TaskDetail>('GET', `/api/tasks/${props.taskId}`)
      .then(setTask)
      .catch((e) => setError(e instanceof ApiError ? e.message : String(e)));
  useEffect(() => {
    load();
    return props.live?.on('task', (m) => {
      if (m.task === props.taskId) load();
    });
  }, [props.taskId, props.live]);
  if (error) return <p class="error">{error}</p>;
  if (!task) return <p class="loading">{t('loading')}</p>;
  const report = latestReport(task.reports);
  const addenda = task.reports.filter((r) => r.kind === 'addendum');
  return (
    <div class="reading">
      <div class="task-bar">
        <a
          href="#/township"
          onClick={(e) => {
            // Back to where the report was opened from (the worklist, a patient's timeline).
            if (history.length > 1) {
              e.preventDefault();
              history.back();
            }
          }}
        >
          ← {t('back')}
        </a>
        <PriorityBadge task={task} />
        <strong>{personName(task.patient.name) || task.patient.id}</strong>
        <span>{task.modalities}</span>
        <span>{task.description}</span>
        <span class="status">{statusText(task.status)}</span>
        {task.kind === 'imaging' && (
          <AdvancedViewerButton study={task.studyInstanceUid} modalities={task.modalities} />
        )}
      </div>
      <CriticalResults live={props.live} taskId={task.id} />
      <div class="reading-body">
        {task.kind === 'imaging' && (
          <ImageViewer study={task.studyInstanceUid} lowBandwidth={true} />
        )}
        <section
          class={`report final-report${task.kind === 'ecg' ? ' with-ecg-page' : ''}`}
          aria-labelledby="final-title"
        >
          <h3 id="final-title">
            {t('report')} · {statusText(report?.kind ?? task.status)}
          </h3>
          {!report || report.kind === 'draft' ? (
            <p class="empty">{t('noReport')}</p>
          ) : (
            <>
              <h4>{t('findings')}</h4>
              <p class="findings">{report.findings}</p>
              <h4>{t('impression')}</h4>
              <p class="impression">{report.impression}</p>
              {report.critical && <p class="badge stat">{t('critical')}</p>}
              <p class="signed">
                {t('signedBy')} {report.author} · {t('signedAt')} {dateTime(report.createdAt)}
              </p>
              {task.kind === 'ecg' && report.kind === 'final' && (
                <SignedEcgPage
                  study={task.studyInstanceUid}
                  reportId={task.reports[task.reports.length - 1].id}
                  patient={task.patient.id}
                />
              )}
            </>
          )}
          {addenda.map((a) => (
            <div class="addendum">
              <h4>
                {t('addendum')} · {a.author} · {dateTime(a.createdAt)}
              </h4>
              <p>{a.findings}</p>
            </div>
          ))}
        </section>
      </div>
    </div>
  );
}
