// The township doctor sends a study (DICOM files, STOW-RS) or an ECG (HL7 aECG XML, DICOM ECG)
// with the clinical question and urgency: stored, routed to the readers at once with the question
// on the study, and raised to urgent or STAT.
import { useState } from 'preact/hooks';
import { api, ApiError, currentToken, Task } from './api';
import { Key, t } from './i18n';

type Urgency = 'routine' | 'urgent' | 'stat';

function boundary(): string {
  let s = 'yilian-';
  for (let i = 0; i < 24; ++i) s += Math.floor(Math.random() * 36).toString(36);
  return s;
}

// STOW-RS of DICOM files; the study instance UIDs stored.
async function stow(files: File[]): Promise<string[]> {
  const b = boundary();
  const parts: BlobPart[] = [];
  for (const f of files) parts.push(`--${b}\r\nContent-Type: application/dicom\r\n\r\n`, f, '\r\n');
  parts.push(`--${b}--\r\n`);
  const res = await fetch('/dicom-web/studies', {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${currentToken()}`,
      'Content-Type': `multipart/related; type="application/dicom"; boundary=${b}`,
      Accept: 'application/dicom+json',
    },
    body: new Blob(parts),
  });
  const text = await res.text();
  const answer = text ? (JSON.parse(text) as Record<string, { Value?: unknown[] }>) : {};
  const failed = (answer['00081198']?.Value ?? []).length;
  const stored = (answer['00081199']?.Value ?? []) as Record<string, { Value?: unknown[] }>[];
  if (stored.length === 0) {
    throw new ApiError(res.status, 'not_stored', `${failed} ${t('filesRefused')}`);
  }
  const studies = new Set<string>();
  for (const item of stored) {
    const url = String(item['00081190']?.Value?.[0] ?? '');
    const m = /\/studies\/([^/]+)/.exec(url);
    if (m) studies.add(m[1]);
  }
  return [...studies];
}

export function SendStudy(props: { onSent: () => void }) {
  const [files, setFiles] = useState<File[]>([]);
  const [question, setQuestion] = useState('');
  const [urgency, setUrgency] = useState<Urgency>('routine');
  const [patientId, setPatientId] = useState('');
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);
  const isEcgXml = files.length === 1 && files[0].name.toLowerCase().endsWith('.xml');

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setMessage('');
    try {
      let studies: string[];
      if (isEcgXml) {
        const q = new URLSearchParams({ patientId });
        const res = await fetch(`/api/ecg?${q}`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${currentToken()}`, 'Content-Type': 'application/xml' },
          body: files[0],
        });
        const body = (await res.json()) as {
          studyInstanceUid?: string;
          error?: { message: string };
        };
        if (!res.ok) throw new ApiError(res.status, 'ecg', body.error?.message ?? res.statusText);
        studies = [body.studyInstanceUid!];
      } else {
        studies = await stow(files);
      }
      // Routed now, not after the stable time; raised with the question as the reason.
      const tasks: number[] = [];
      for (const uid of studies) {
        const r = await api<{ tasks: number[] }>(
          'POST',
          `/api/studies/${uid}/complete`,
          question ? { clinicalQuestion: question } : {},
        );
        tasks.push(...r.tasks);
        if (r.tasks.length === 0) {
          const list = await api<{ tasks: Task[] }>('GET', '/api/worklist?limit=200');
          tasks.push(...list.tasks.filter((x) => x.studyInstanceUid === uid).map((x) => x.id));
        }
      }
      if (urgency !== 'routine') {
        for (const id of tasks) {
          await api('POST', `/api/tasks/${id}/priority`, {
            priority: urgency,
            reason: question || t(urgency as Key),
          });
        }
      }
      setMessage(`${t('sentOk')}: ${studies.length} / ${tasks.length}`);
      setFiles([]);
      props.onSent();
    } catch (err) {
      setMessage(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="panel send-study" onSubmit={submit} aria-labelledby="send-title">
      <h3 id="send-title">{t('sendStudy')}</h3>
      <label>
        {t('files')}
        <input
          type="file"
          name="files"
          multiple
          required
          accept=".dcm,.xml,application/dicom"
          onChange={(e) => setFiles([...(e.currentTarget.files ?? [])])}
        />
      </label>
      {isEcgXml && (
        <label>
          {t('patientId')}
          <input
            name="patientId"
            required
            value={patientId}
            onInput={(e) => setPatientId(e.currentTarget.value)}
          />
        </label>
      )}
      <label>
        {t('clinicalQuestion')}
        <input
          name="question"
          value={question}
          onInput={(e) => setQuestion(e.currentTarget.value)}
        />
      </label>
      <label>
        {t('urgency')}
        <select
          name="urgency"
          value={urgency}
          onChange={(e) => setUrgency(e.currentTarget.value as Urgency)}
        >
          <option value="routine">{t('routine')}</option>
          <option value="urgent">{t('urgent')}</option>
          <option value="stat">{t('stat')}</option>
        </select>
      </label>
      <button type="submit" class="primary" disabled={busy || files.length === 0}>
        {t('send')}
      </button>
      {message && (
        <p class="message" role="status">
          {message}
        </p>
      )}
    </form>
  );
}
