// The report editor beside the viewer: templates per study type, findings and impression,
// critical flag, draft / preliminary / final, addenda after final; keyboard-driven.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, Report, TaskDetail } from './api';
import { dateTime, currentLang, t } from './i18n';
import { EcgAnalysis, ecgInstance, Flag, statementText } from './ecg';
import { SavedMeasure, valueLabel } from './viewer';

interface Template {
  name: string;
  findings: string;
  impression: string;
}

// Normal-study wording a reader starts from, by modality; zh-CN and en.
const TEMPLATES: Record<string, { zh: Template[]; en: Template[] }> = {
  CT: {
    zh: [
      {
        name: '头颅CT平扫（正常）',
        findings: '脑实质内未见异常密度影，脑室系统大小形态正常，中线结构居中，颅骨未见骨折。',
        impression: '头颅CT平扫未见明显异常。',
      },
      {
        name: '胸部CT平扫（正常）',
        findings: '双肺纹理清晰，未见实变及结节，气管支气管通畅，纵隔未见肿大淋巴结，无胸腔积液。',
        impression: '胸部CT平扫未见明显异常。',
      },
    ],
    en: [
      {
        name: 'CT head, non-contrast (normal)',
        findings:
          'No intracranial haemorrhage, mass effect or territorial infarct. Ventricles normal in size. Midline structures central. No skull fracture.',
        impression: 'Normal non-contrast CT head.',
      },
      {
        name: 'CT chest (normal)',
        findings:
          'Lungs clear, no consolidation or nodule. Airways patent. No mediastinal lymphadenopathy. No pleural effusion.',
        impression: 'Normal CT chest.',
      },
    ],
  },
  DX: {
    zh: [
      {
        name: '胸部正位片（正常）',
        findings: '双肺纹理清晰，未见实变影，心影大小形态正常，双侧膈面光整，肋膈角锐利。',
        impression: '心肺膈未见明显异常。',
      },
    ],
    en: [
      {
        name: 'Chest PA (normal)',
        findings:
          'Lungs clear. Heart size normal. Diaphragms smooth, costophrenic angles sharp. No pneumothorax.',
        impression: 'Normal chest radiograph.',
      },
    ],
  },
  US: {
    zh: [
      {
        name: '腹部超声（正常）',
        findings: '肝脏大小形态正常，实质回声均匀；胆囊未见结石；胰腺、脾脏、双肾未见异常。',
        impression: '腹部超声未见明显异常。',
      },
    ],
    en: [
      {
        name: 'Ultrasound abdomen (normal)',
        findings:
          'Liver normal in size with homogeneous echotexture. No gallstones. Pancreas, spleen and both kidneys unremarkable.',
        impression: 'Normal abdominal ultrasound.',
      },
    ],
  },
};
TEMPLATES.ECG = {
  zh: [
    {
      name: '正常心电图',
      findings: '窦性心律，心率正常，PR、QRS、QT间期在正常范围，未见ST-T异常改变。',
      impression: '窦性心律，正常心电图。',
    },
  ],
  en: [
    {
      name: 'Normal ECG',
      findings: 'Sinus rhythm at a normal rate. PR, QRS and QT intervals normal. No ST-T changes.',
      impression: 'Sinus rhythm. Normal ECG.',
    },
  ],
};
// Pathology (whole-slide images): the intraoperative frozen section, which the surgeon waits
// for and which the paraffin sections confirm, and the routine histopathology report (gross
// description, microscopy, diagnosis).
TEMPLATES.SM = {
  zh: [
    {
      name: '术中冰冻切片诊断',
      findings:
        '送检组织：（部位）\n大体所见：灰白色组织一块，大小 × × cm。\n镜下所见：（细胞形态、排列及切缘情况）',
      impression:
        '（部位）冰冻切片：（良性/恶性/待石蜡切片明确）；切缘（未见/可见）肿瘤累及。\n注：冰冻切片诊断仅供术中参考，最终诊断以石蜡切片为准。',
    },
    {
      name: '组织病理诊断（常规石蜡）',
      findings:
        '大体所见：（标本类型、大小、切面）\n镜下所见：（组织结构、细胞异型性、核分裂、坏死、脉管及神经侵犯）',
      impression: '病理诊断：（部位）（病变名称、组织学类型及分级）；切缘情况；淋巴结（ / ）。',
    },
  ],
  en: [
    {
      name: 'Frozen section (intraoperative)',
      findings:
        'Specimen: (site)\nGross: one grey-white fragment, × × cm.\nMicroscopy: (cells, architecture, margins)',
      impression:
        '(Site), frozen section: (benign / malignant / deferred to permanent sections); margin (free / involved).\nFrozen section diagnosis is for intraoperative guidance; the permanent sections give the final diagnosis.',
    },
    {
      name: 'Histopathology (paraffin)',
      findings:
        'Gross: (specimen type, size, cut surface)\nMicroscopy: (architecture, atypia, mitoses, necrosis, lymphovascular and perineural invasion)',
      impression:
        'Diagnosis: (site) (lesion, histological type and grade); margins; lymph nodes ( / ).',
    },
  ],
};
TEMPLATES.CR = TEMPLATES.DX;

export function latestReport(reports: Report[]): Report | undefined {
  return [...reports].filter((r) => r.kind !== 'addendum').sort((a, b) => b.version - a.version)[0];
}

// An ECG's automated statements for the reader to confirm: each checked one goes into the
// impression; a final report sends which were proposed and which were signed (agreement
// statistics on the dashboard).
// The reader may add statements the analysis did not propose, from the hub's catalogue.
function useEcgStatements(task: TaskDetail) {
  const [analysis, setAnalysis] = useState<EcgAnalysis | null>(null);
  const [checked, setChecked] = useState<Set<string>>(new Set());
  const [catalogue, setCatalogue] = useState<Flag[]>([]);
  const [added, setAdded] = useState<Flag[]>([]);
  useEffect(() => {
    if (task.kind !== 'ecg') return;
    setAdded([]);
    ecgInstance(task.studyInstanceUid)
      .then((uid) => api<EcgAnalysis>('GET', `/api/ecg/${uid}`))
      .then((a) => {
        setAnalysis(a);
        setChecked(new Set(a.flags.map((f) => f.code)));
      })
      .catch(() => setAnalysis(null));
    api<{ statements: Flag[] }>('GET', '/api/ecg/statements')
      .then((c) => setCatalogue(c.statements))
      .catch(() => setCatalogue([]));
  }, [task.id]);
  // What the reader signs, in order: the proposals kept, then the statements added.
  const chosen = (): Flag[] => [
    ...(analysis?.flags.filter((f) => checked.has(f.code)) ?? []),
    ...added.filter((f) => checked.has(f.code)),
  ];
  return { analysis, checked, setChecked, catalogue, added, setAdded, chosen };
}

export function ReportEditor(props: { task: TaskDetail; mine: boolean; onSaved: () => void }) {
  const { task } = props;
  const ecg = useEcgStatements(task);
  const last = latestReport(task.reports);
  const isFinal = task.status === 'final';
  const [findings, setFindings] = useState(last?.findings ?? '');
  const [impression, setImpression] = useState(last?.impression ?? '');
  const [critical, setCritical] = useState(last?.critical ?? false);
  const [addendum, setAddendum] = useState('');
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    setFindings(last?.findings ?? '');
    setImpression(last?.impression ?? '');
    setCritical(last?.critical ?? false);
  }, [task.id, last?.version]);

  // The reader's own measurements on the study, as one line at the end of the findings.
  const insertMeasurements = async () => {
    try {
      const r = await api<{ measurements: SavedMeasure[] }>(
        'GET',
        `/api/studies/${encodeURIComponent(task.studyInstanceUid)}/measurements`,
      );
      const mine = r.measurements.filter((m) => m.mine);
      if (!mine.length) {
        setMessage(t('noMeasurementsOfYours'));
        return;
      }
      const sep = currentLang() === 'en' ? '; ' : '；';
      const line =
        t('measuredPrefix') +
        mine
          .map(
            (m) => `${t(m.kind === 'length' ? 'measureLength' : 'measureAngle')} ${valueLabel(m)}`,
          )
          .join(sep);
      setFindings((f) => (f.trim() ? `${f.trimEnd()}\n${line}` : line));
    } catch (e) {
      setMessage(e instanceof ApiError ? e.message : String(e));
    }
  };

  const modality = task.modalities.split(/[\\,]/)[0] ?? '';
  const templates = TEMPLATES[modality]?.[currentLang() === 'en' ? 'en' : 'zh'] ?? [];

  const save = async (kind: Report['kind']) => {
    if (kind === 'final' && !window.confirm(t('confirmFinal'))) return;
    setBusy(true);
    setMessage('');
    try {
      const statements = ecg.analysis
        ? {
            proposed: ecg.analysis.flags.map((f) => f.code),
            signed: ecg.chosen().map((f) => f.code),
          }
        : undefined;
      const body =
        kind === 'addendum'
          ? { kind, findings: addendum, impression: '', critical: false }
          : { kind, findings, impression, critical, statements };
      await api('POST', `/api/tasks/${task.id}/reports`, body);
      setMessage(t('saved'));
      if (kind === 'addendum') setAddendum('');
      props.onSaved();
    } catch (e) {
      setMessage(e instanceof ApiError ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!(e.ctrlKey || e.metaKey) || !props.mine || isFinal) return;
      if (e.key === 'Enter') {
        e.preventDefault();
        save(e.shiftKey ? 'preliminary' : 'final');
      } else if (e.key === 's') {
        e.preventDefault();
        save('draft');
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  return (
    <section class="report" aria-labelledby="report-title">
      <h3 id="report-title">{t('report')}</h3>
      {!isFinal && props.mine && templates.length > 0 && (
        <label>
          {t('template')}
          <select
            onChange={(e) => {
              const tpl = templates[Number(e.currentTarget.value)];
              if (tpl) {
                setFindings(tpl.findings);
                setImpression(tpl.impression);
              }
            }}
          >
            <option value="">—</option>
            {templates.map((tpl, i) => (
              <option value={i}>{tpl.name}</option>
            ))}
          </select>
        </label>
      )}
      {ecg.analysis && !isFinal && props.mine && (
        <fieldset class="ecg-statements">
          <legend>{t('automatedStatements')}</legend>
          {[...ecg.analysis.flags, ...ecg.added].map((f) => (
            <label class="check" data-code={f.code}>
              <input
                type="checkbox"
                checked={ecg.checked.has(f.code)}
                onChange={(e) => {
                  const next = new Set(ecg.checked);
                  if (e.currentTarget.checked) next.add(f.code);
                  else next.delete(f.code);
                  ecg.setChecked(next);
                }}
              />
              {statementText(f)} {f.evidence && <small>{f.evidence}</small>}
            </label>
          ))}
          {ecg.catalogue.length > 0 && (
            <label>
              {t('addStatement')}
              <select
                name="add-statement"
                value=""
                onChange={(e) => {
                  const code = e.currentTarget.value;
                  const s = ecg.catalogue.find((x) => x.code === code);
                  if (!s) return;
                  ecg.setAdded([...ecg.added, { code: s.code, text: s.text, textZh: s.textZh }]);
                  ecg.setChecked(new Set([...ecg.checked, s.code]));
                }}
              >
                <option value="">—</option>
                {ecg.catalogue
                  .filter(
                    (s) =>
                      !ecg.analysis?.flags.some((f) => f.code === s.code) &&
                      !ecg.added.some((f) => f.code === s.code),
                  )
                  .map((s) => (
                    <option value={s.code}>{statementText(s)}</option>
                  ))}
              </select>
            </label>
          )}
          <button
            type="button"
            name="fill-statements"
            onClick={() => {
              const a = ecg.analysis;
              if (!a) return;
              const chosen = ecg.chosen().map(statementText);
              const v = (x: number | null, unit: string) =>
                x === null ? '—' : `${Math.round(x)}${unit}`;
              setFindings(
                `${t('heartRate')} ${v(a.heartRate_bpm, '/min')}, PR ${v(a.pr_ms, 'ms')}, QRS ${v(a.qrs_ms, 'ms')}, QT/QTc ${v(a.qt_ms, '')}/${v(a.qtcBazett_ms, 'ms')}, ${t('axis')} ${v(a.axis_deg, '°')}`,
              );
              setImpression(chosen.join(currentLang() === 'en' ? '; ' : '；'));
              setCritical(
                a.flags.some((f) => f.code === 'suspected_stemi' && ecg.checked.has(f.code)),
              );
            }}
          >
            {t('fillFromStatements')}
          </button>
        </fieldset>
      )}
      {!isFinal && props.mine && (
        <button type="button" class="insert-measurements" onClick={() => void insertMeasurements()}>
          {t('insertMeasurements')}
        </button>
      )}
      <label>
        {t('findings')}
        <textarea
          name="findings"
          rows={8}
          readOnly={isFinal || !props.mine}
          value={findings}
          onInput={(e) => setFindings(e.currentTarget.value)}
        />
      </label>
      <label>
        {t('impression')}
        <textarea
          name="impression"
          rows={4}
          readOnly={isFinal || !props.mine}
          value={impression}
          onInput={(e) => setImpression(e.currentTarget.value)}
        />
      </label>
      <label class="check critical">
        <input
          type="checkbox"
          name="critical"
          disabled={isFinal || !props.mine}
          checked={critical}
          onChange={(e) => setCritical(e.currentTarget.checked)}
        />
        {t('critical')}
      </label>
      {!isFinal && props.mine && (
        <div class="actions">
          <button type="button" disabled={busy} onClick={() => save('draft')}>
            {t('saveDraft')} (Ctrl+S)
          </button>
          <button type="button" disabled={busy} onClick={() => save('preliminary')}>
            {t('signPreliminary')} (Ctrl+Shift+Enter)
          </button>
          <button type="button" class="primary" disabled={busy} onClick={() => save('final')}>
            {t('signFinal')} (Ctrl+Enter)
          </button>
        </div>
      )}
      {isFinal && (
        <div class="addendum">
          <label>
            {t('addendum')}
            <textarea
              name="addendum"
              rows={3}
              value={addendum}
              onInput={(e) => setAddendum(e.currentTarget.value)}
            />
          </label>
          <button
            type="button"
            disabled={busy || !addendum.trim()}
            onClick={() => save('addendum')}
          >
            {t('addAddendum')}
          </button>
        </div>
      )}
      {message && (
        <p class="message" role="status">
          {message}
        </p>
      )}
      <ReportHistory reports={task.reports} />
    </section>
  );
}

export function ReportHistory({ reports }: { reports: Report[] }) {
  if (reports.length === 0) return <p class="empty">{t('noReport')}</p>;
  return (
    <details class="history">
      <summary>{t('reportHistory')}</summary>
      <ol>
        {[...reports]
          .sort((a, b) => a.version - b.version)
          .map((r) => (
            <li>
              {r.version}. {r.kind} · {r.author} · {dateTime(r.createdAt)}
              {r.critical ? ` · ${t('critical')}` : ''}
            </li>
          ))}
      </ol>
    </details>
  );
}
