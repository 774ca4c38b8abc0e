// Small pieces the screens share: priority badges, SLA countdowns, a ticking clock, members'
// names, the
// request forms' study picker and buttons, the advanced viewer's button.
import { useEffect, useState } from 'preact/hooks';
import { api, personName, Task } from './api';
import { currentLang, duration, Key, t } from './i18n';

// The consortium's members by code (code -> name), to show a member by its name.
export function useInstitutionNames(): Record<string, string> {
  const [names, setNames] = useState<Record<string, string>>({});
  useEffect(() => {
    api<{ institutions: { code: string; name: string }[] }>('GET', '/api/institutions')
      .then((r) => setNames(Object.fromEntries(r.institutions.map((i) => [i.code, i.name]))))
      .catch(() => {});
  }, []);
  return names;
}

export function useNow(periodMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = window.setInterval(() => setNow(Date.now()), periodMs);
    return () => window.clearInterval(id);
  }, [periodMs]);
  return now;
}

export const isStemi = (task: Task) => /stemi/i.test(task.priorityReason);

// A reason the hub wrote (the ECG analysis's words on a STAT task, an emergency case, an alert;
// a frozen section's STAT reason) in the screen's language: the automated terms have standard
// Chinese names; the measurements stay as they are; reasons people wrote (priority rules) are
// shown as written.
const TERRITORY_ZH: Record<string, string> = {
  inferior: '下壁',
  anterior: '前壁',
  lateral: '侧壁',
};
export function reasonText(reason: string): string {
  if (currentLang() === 'en' || !reason) return reason;
  return reason
    .replace(/Suspected STEMI(?: \(([a-z, ]+)\))?(: )?/, (_m, terr?: string, sep?: string) => {
      const zh = (terr ?? '')
        .split(', ')
        .map((x) => TERRITORY_ZH[x] ?? '')
        .join('');
      return `疑似急性ST段抬高型心肌梗死${zh ? `（${zh}）` : ''}${sep ? '：' : ''}`;
    })
    .replace('ST elevation at J:', 'J点ST段抬高：')
    .replace('; reciprocal depression:', '；对应导联ST段压低：')
    .replace('frozen section: the surgeon is waiting', '术中冰冻切片：手术医生等待结果');
}

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

// The caller's reported studies to attach to a consult or a referral: checkboxes whose checked
// study UIDs are `chosen`. Nothing is shown while there are none.
export function StudyPicker(props: { chosen: string[]; onChange: (uids: string[]) => void }) {
  const [studies, setStudies] = useState<Task[]>([]);
  useEffect(() => {
    api<{ tasks: Task[] }>('GET', '/api/worklist?status=final&limit=50')
      .then((r) => setStudies(r.tasks))
      .catch(() => {});
  }, []);
  if (studies.length === 0) return null;
  const { chosen, onChange } = props;
  return (
    <fieldset class="wide">
      <legend>{t('attachStudies')}</legend>
      {studies.map((s) => (
        <label class="check">
          <input
            type="checkbox"
            checked={chosen.includes(s.studyInstanceUid)}
            onChange={(e) =>
              onChange(
                e.currentTarget.checked
                  ? [...chosen, s.studyInstanceUid]
                  : chosen.filter((x) => x !== s.studyInstanceUid),
              )
            }
          />
          {personName(s.patient.name) || s.patient.id} · {s.modalities} · {s.description}
        </label>
      ))}
    </fieldset>
  );
}

// A request form's error line and its send and cancel buttons.
export function FormActions(props: { error: string; onCancel: () => void }) {
  return (
    <>
      {props.error && (
        <p class="error wide" role="alert">
          {props.error}
        </p>
      )}
      <div class="wide actions">
        <button type="submit" class="primary">
          {t('send')}
        </button>
        <button type="button" onClick={props.onCancel}>
          {t('cancel')}
        </button>
      </div>
    </>
  );
}

// Opens a study in the advanced viewer (OHIF at /ohif/). The hub first hands the browser a
// viewer cookie (read-only DICOMweb, HttpOnly: the bearer token never reaches the viewer's
// page); the viewer opens without an opener, so it shares neither this page's window nor its
// session storage. Whole-slide (SM) studies open in OHIF's microscopy mode.
export function AdvancedViewerButton({ study, modalities }: { study: string; modalities: string }) {
  const mode = modalities.split('\\').includes('SM') ? 'microscopy' : 'viewer';
  const [error, setError] = useState('');
  const open = async (e: Event) => {
    e.stopPropagation();
    setError('');
    try {
      await api('POST', '/api/auth/viewer');
      window.open(
        `/ohif/${mode}?StudyInstanceUIDs=${encodeURIComponent(study)}`,
        '_blank',
        'noopener',
      );
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <button
      type="button"
      class="advanced-viewer"
      data-study={study}
      data-mode={mode}
      onClick={open}
      title={error || t('advancedViewerHint')}
    >
      {t('advancedViewer')}
      {error && <span class="error"> ⚠</span>}
    </button>
  );
}
