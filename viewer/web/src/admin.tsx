// The consortium office's screens (role admin): institutions and their AE titles, users and
// their roles, reading services, queue rules and targets, the audit trail and the system.
// Every change goes through the admin REST endpoints, takes effect without a restart and is
// audited; none of these screens shows patient data.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, currentToken } from './api';
import { dateTime, Key, t } from './i18n';

interface Change {
  by: string;
  at: string;
  action: string;
}
interface Institution {
  code: string;
  name: string;
  level: string;
  parent: string | null;
  aeTitles: string[];
  charset: string;
  fromFile?: boolean;
  lastChange?: Change | null;
}
interface AdminUser {
  username: string;
  displayName: string;
  institution: string;
  roles: string[];
  credentials: string[];
  disabled: boolean;
  createdAt: string;
  mustChangePassword: boolean;
  passwordChangedAt: string;
  services: string[];
  lastChange: Change | null;
}
interface ReadingService {
  provider: string;
  client: string;
  service: 'imaging' | 'ecg';
  fromFile?: boolean;
}
interface Setting {
  key: string;
  value: unknown;
  fileValue: unknown;
  source: 'default' | 'file' | 'screen';
  changedBy: string | null;
  changedAt: string | null;
}
interface Shift {
  id: number;
  institution: string;
  service: string;
  role: 'primary' | 'backup';
  user: string;
  startsAt: string;
  endsAt: string;
  createdBy: string;
}
interface AuditRecord {
  seq: number;
  at: string;
  actor: string;
  actorInstitution: string;
  address: string;
  action: string;
  objectType: string;
  objectId: string;
  outcome: string;
  detail: string;
}

const LEVELS = ['lead', 'county', 'community', 'township', 'village', 'office', 'external'];
const ROLES = [
  'township_doctor',
  'radiologist',
  'pathologist',
  'ecg_reader',
  'cardiologist',
  'physician',
  'qc_reviewer',
  'admin',
];
// The character sets a modality's text may be in when it declares none (DICOM defined terms).
const CHARSETS = ['', 'GB18030', 'GBK', 'ISO_IR 192', 'ISO_IR 100', 'ISO 2022 IR 58'];
const TABS = [
  'institutions',
  'users',
  'services',
  'oncall',
  'edges',
  'rules',
  'recognition',
  'audit',
  'system',
] as const;
type Tab = (typeof TABS)[number];

const list = (s: string) =>
  s
    .split(/[,，\s]+/)
    .map((x) => x.trim())
    .filter(Boolean);
const message = (e: unknown) => (e instanceof ApiError ? e.message : String(e));

// A labelled text input (the screens' forms are made of them).
function Field(props: {
  label: string;
  name: string;
  value: string;
  onInput: (v: string) => void;
  type?: string;
  placeholder?: string;
  readOnly?: boolean;
  required?: boolean;
  minLength?: number;
  min?: number;
  max?: number;
  autocomplete?: string;
  list?: string;
}) {
  const { label, onInput, ...input } = props;
  return (
    <label>
      {label}
      <input {...input} onInput={(e) => onInput(e.currentTarget.value)} />
    </label>
  );
}

// A labelled choice among fixed values, each shown by its UI text.
function Choice(props: {
  label: string;
  name: string;
  value: string;
  options: [string, Key][];
  onChange: (v: string) => void;
}) {
  return (
    <label>
      {props.label}
      <select
        name={props.name}
        value={props.value}
        onChange={(e) => props.onChange(e.currentTarget.value)}
      >
        {props.options.map(([value, text]) => (
          <option value={value}>{t(text)}</option>
        ))}
      </select>
    </label>
  );
}

// A table head of UI texts ('' for an empty cell, '#' as it is).
// A labelled choice of institution ("code · name"); `blank`: "—" first, for a form not yet
// filled in.
function InstitutionSelect(props: {
  label: string;
  name: string;
  value: string;
  institutions: Institution[];
  onChange: (code: string) => void;
  required?: boolean;
  blank?: boolean;
}) {
  return (
    <label>
      {props.label}
      <select
        name={props.name}
        required={props.required}
        value={props.value}
        onChange={(e) => props.onChange(e.currentTarget.value)}
      >
        {props.blank && <option value="">—</option>}
        {props.institutions.map((i) => (
          <option value={i.code}>{`${i.code} · ${i.name}`}</option>
        ))}
      </select>
    </label>
  );
}

// A form under a screen's table that adds a row: its title, and `onSubmit` instead of the
// browser's submission.
function AddForm(props: { title: string; onSubmit: () => void; children: ComponentChildren }) {
  return (
    <form
      class="admin-form"
      aria-label={props.title}
      onSubmit={(e) => {
        e.preventDefault();
        props.onSubmit();
      }}
    >
      <h3>{props.title}</h3>
      {props.children}
    </form>
  );
}

function Head({ cols }: { cols: (Key | '' | '#')[] }) {
  return (
    <thead>
      <tr>{cols.map((c) => (c === '' ? <th /> : <th>{c === '#' ? c : t(c)}</th>))}</tr>
    </thead>
  );
}

// Who changed a row last, and when (from the audit trail).
function LastChange({ c }: { c: Change | null | undefined }) {
  return c ? (
    <small class="muted">
      {c.by} · {dateTime(c.at)}
    </small>
  ) : null;
}

function FileBadge({ on }: { on: boolean | undefined }) {
  return on ? <small class="source file">{t('src_file')}</small> : null;
}

function Notice(props: { error: string; ok?: string }) {
  return (
    <>
      {props.error && (
        <p class="error" role="alert">
          {props.error}
        </p>
      )}
      {props.ok && (
        <p class="ok-note" role="status">
          {props.ok}
        </p>
      )}
    </>
  );
}

export function Admin(props: { tab: string }) {
  const tab: Tab = (TABS as readonly string[]).includes(props.tab) ? (props.tab as Tab) : 'system';
  return (
    <section class="admin" aria-labelledby="admin-title" data-tab={tab}>
      <div class="toolbar">
        <h2 id="admin-title">{t('administration')}</h2>
        <nav class="tabs" aria-label={t('administration')}>
          {TABS.map((x) => (
            <a href={`#/admin/${x}`} class={x === tab ? 'on' : ''} aria-current={x === tab}>
              {t(`admin_${x}` as Key)}
            </a>
          ))}
        </nav>
      </div>
      {tab === 'institutions' && <Institutions />}
      {tab === 'users' && <Users />}
      {tab === 'services' && <Services />}
      {tab === 'oncall' && <OnCall />}
      {tab === 'edges' && <Edges />}
      {tab === 'rules' && <Rules />}
      {tab === 'recognition' && <RecognitionPage />}
      {tab === 'audit' && <Audit />}
      {tab === 'system' && <SystemPage />}
    </section>
  );
}

function useInstitutions(): [Institution[], () => void] {
  const [all, setAll] = useState<Institution[]>([]);
  const load = () => {
    api<{ institutions: Institution[] }>('GET', '/api/admin/institutions')
      .then((r) => setAll(r.institutions))
      .catch(() => setAll([]));
  };
  useEffect(load, []);
  return [all, load];
}

// ---- Institutions ------------------------------------------------------------------------

const emptyInstitution: Institution = {
  code: '',
  name: '',
  level: 'township',
  parent: null,
  aeTitles: [],
  charset: '',
};

function Institutions() {
  const [all, reload] = useInstitutions();
  const [edit, setEdit] = useState<Institution | null>(null);
  const [aes, setAes] = useState('');
  const [error, setError] = useState('');
  const [ok, setOk] = useState('');
  const [echo, setEcho] = useState({ ae: '', host: '', port: '104' });
  const [echoResult, setEchoResult] = useState('');

  const open = (i: Institution) => {
    setEdit({ ...i });
    setAes(i.aeTitles.join(', '));
    setError('');
    setOk('');
  };
  const save = async (e: Event) => {
    e.preventDefault();
    if (!edit) return;
    try {
      await api('POST', '/api/admin/institutions', {
        ...edit,
        parent: edit.parent || '',
        aeTitles: list(aes),
      });
      setOk(`${t('saved')}: ${edit.code}`);
      setEdit(null);
      reload();
    } catch (err) {
      setError(message(err));
    }
  };
  const runEcho = async (e: Event) => {
    e.preventDefault();
    setEchoResult('');
    try {
      const r = await api<{ ok: boolean; milliseconds?: number; error?: string }>(
        'POST',
        '/api/admin/dicom-echo',
        { aeTitle: echo.ae, host: echo.host, port: Number(echo.port) },
      );
      setEchoResult(
        r.ok
          ? `C-ECHO ${echo.ae}: ${t('echoOk')} (${r.milliseconds?.toFixed(0)} ms)`
          : `${r.error}`,
      );
    } catch (err) {
      setEchoResult(message(err));
    }
  };
  const field = (k: keyof Institution, v: string) => edit && setEdit({ ...edit, [k]: v });

  return (
    <div class="admin-body">
      <Notice error={error} ok={ok} />
      <table class="tasks admin-table" aria-label={t('admin_institutions')}>
        <Head
          cols={[
            'code',
            'name',
            'level',
            'parentInstitution',
            'aeTitles',
            'charset',
            'lastChange',
            '',
          ]}
        />
        <tbody>
          {all.map((i) => (
            <tr data-institution={i.code}>
              <td>{i.code}</td>
              <td>{i.name}</td>
              <td>{t(`level_${i.level}` as Key)}</td>
              <td>{i.parent ?? ''}</td>
              <td>{i.aeTitles.join(', ')}</td>
              <td>{i.charset || <span class="muted">{t('hubDefault')}</span>}</td>
              <td>
                <FileBadge on={i.fromFile} />
                <LastChange c={i.lastChange} />
              </td>
              <td>
                <button type="button" onClick={() => open(i)}>
                  {t('edit')}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {!edit && (
        <button type="button" class="primary" onClick={() => open(emptyInstitution)}>
          {t('newInstitution')}
        </button>
      )}
      {edit && (
        <form class="admin-form" onSubmit={save} aria-label={t('admin_institutions')}>
          <Field
            label={t('code')}
            name="code"
            required
            value={edit.code}
            readOnly={all.some((i) => i.code === edit.code)}
            onInput={(v) => field('code', v)}
          />
          <Field
            label={t('name')}
            name="name"
            value={edit.name}
            onInput={(v) => field('name', v)}
          />
          <label>
            {t('level')}
            <select
              name="level"
              value={edit.level}
              onChange={(e) => field('level', e.currentTarget.value)}
            >
              {LEVELS.map((l) => (
                <option value={l}>{t(`level_${l}` as Key)}</option>
              ))}
            </select>
          </label>
          <label>
            {t('parentInstitution')}
            <select
              name="parent"
              value={edit.parent ?? ''}
              onChange={(e) => field('parent', e.currentTarget.value)}
            >
              <option value="">—</option>
              {all
                .filter((i) => i.code !== edit.code)
                .map((i) => (
                  <option value={i.code}>{`${i.code} · ${i.name}`}</option>
                ))}
            </select>
          </label>
          <Field
            label={t('aeTitles')}
            name="aeTitles"
            value={aes}
            placeholder="TA_CT, TA_DR"
            onInput={(v) => setAes(v)}
          />
          <label>
            {t('charset')}
            <select
              name="charset"
              value={edit.charset}
              onChange={(e) => field('charset', e.currentTarget.value)}
            >
              {CHARSETS.map((c) => (
                <option value={c}>{c || t('hubDefault')}</option>
              ))}
            </select>
          </label>
          {edit.fromFile && <p class="muted wide">{t('fromFileHint')}</p>}
          <div class="actions">
            <button type="submit" class="primary">
              {t('save')}
            </button>
            <button type="button" onClick={() => setEdit(null)}>
              {t('cancel')}
            </button>
          </div>
        </form>
      )}
      <form class="admin-form echo" onSubmit={runEcho} aria-label={t('echoTest')}>
        <h3>{t('echoTest')}</h3>
        <label>
          {t('aeTitles')}
          <select
            name="echo-ae"
            value={echo.ae}
            onChange={(e) => setEcho({ ...echo, ae: e.currentTarget.value })}
          >
            <option value="">—</option>
            {all.flatMap((i) =>
              i.aeTitles.map((a) => <option value={a}>{`${a} · ${i.code}`}</option>),
            )}
          </select>
        </label>
        <Field
          label={t('host')}
          name="echo-host"
          value={echo.host}
          placeholder={t('fromConfigFile')}
          onInput={(v) => setEcho({ ...echo, host: v })}
        />
        <Field
          label={t('port')}
          name="echo-port"
          type="number"
          min={1}
          max={65535}
          value={echo.port}
          onInput={(v) => setEcho({ ...echo, port: v })}
        />
        <div class="actions">
          <button type="submit" disabled={!echo.ae}>
            C-ECHO
          </button>
        </div>
        {echoResult && (
          <p class="wide" role="status" data-echo>
            {echoResult}
          </p>
        )}
      </form>
    </div>
  );
}

// ---- Users -------------------------------------------------------------------------------

interface UserForm {
  username: string;
  displayName: string;
  institution: string;
  roles: string[];
  credentials: string[];
  password: string;
  services: string;
  isNew: boolean;
}

function Users() {
  const [users, setUsers] = useState<AdminUser[]>([]);
  const [sessions, setSessions] = useState<{ username: string; since: string; address: string }[]>(
    [],
  );
  const [institutions] = useInstitutions();
  const [form, setForm] = useState<UserForm | null>(null);
  const [reset, setReset] = useState<{ username: string; password: string } | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState('');
  const [ok, setOk] = useState('');
  const load = () => {
    Promise.all([
      api<{ users: AdminUser[] }>('GET', '/api/admin/users'),
      api<{ sessions: typeof sessions }>('GET', '/api/admin/sessions'),
    ])
      .then(([u, s]) => {
        setUsers(u.users);
        setSessions(s.sessions);
      })
      .catch((e) => setError(message(e)))
      .finally(() => setLoaded(true));
  };
  useEffect(load, []);

  const signedIn = (u: string) => sessions.filter((s) => s.username === u);
  const done = (text: string) => {
    setOk(text);
    setError('');
    load();
  };
  const act = async (path: string, body: unknown, text: string) => {
    try {
      await api('POST', path, body);
      done(text);
    } catch (e) {
      setError(message(e));
    }
  };
  const save = async (e: Event) => {
    e.preventDefault();
    if (!form) return;
    const body = {
      username: form.username,
      displayName: form.displayName,
      institution: form.institution,
      roles: form.roles,
      credentials: form.credentials,
    };
    try {
      if (form.isNew) {
        await api('POST', '/api/admin/users', {
          ...body,
          password: form.password,
          mustChangePassword: true,
        });
      } else {
        await api('PUT', `/api/admin/users/${encodeURIComponent(form.username)}`, body);
      }
      await api('PUT', `/api/admin/users/${encodeURIComponent(form.username)}/services`, {
        services: list(form.services),
      });
      setForm(null);
      done(`${t('saved')}: ${form.username}`);
    } catch (err) {
      setError(message(err));
    }
  };
  const toggle = (xs: string[], x: string) =>
    xs.includes(x) ? xs.filter((y) => y !== x) : [...xs, x];

  return (
    <div class="admin-body" data-loaded={loaded ? '' : undefined}>
      <Notice error={error} ok={ok} />
      <table class="tasks admin-table" aria-label={t('admin_users')}>
        <Head
          cols={[
            'username',
            'name',
            'homeInstitution',
            'roles',
            'credentials',
            'status',
            'signedInNow',
            'lastChange',
            '',
          ]}
        />
        <tbody>
          {users.map((u) => (
            <tr data-user={u.username} class={u.disabled ? 'disabled' : ''}>
              <td>{u.username}</td>
              <td>{u.displayName}</td>
              <td>{u.institution}</td>
              <td>
                {u.roles.map((r) => t(`role_${r}` as Key)).join('、')}
                {u.services.length > 0 && <small class="muted"> · {u.services.join(', ')}</small>}
              </td>
              <td>{u.credentials.join(', ')}</td>
              <td>
                {u.disabled ? t('disabled') : t('active')}
                {u.mustChangePassword && <small class="muted"> · {t('temporaryPassword')}</small>}
              </td>
              <td>
                {signedIn(u.username).length > 0 ? (
                  <span class="live-dot" title={signedIn(u.username)[0].address}>
                    {dateTime(signedIn(u.username)[0].since)}
                  </span>
                ) : (
                  ''
                )}
              </td>
              <td>
                <LastChange c={u.lastChange} />
              </td>
              <td>
                <div class="row-actions">
                  <button
                    type="button"
                    onClick={() =>
                      setForm({
                        username: u.username,
                        displayName: u.displayName,
                        institution: u.institution,
                        roles: u.roles,
                        credentials: u.credentials,
                        password: '',
                        services: u.services.join(', '),
                        isNew: false,
                      })
                    }
                  >
                    {t('edit')}
                  </button>
                  <button
                    type="button"
                    onClick={() =>
                      act(
                        `/api/admin/users/${encodeURIComponent(u.username)}/${u.disabled ? 'enable' : 'disable'}`,
                        undefined,
                        `${u.disabled ? t('enabled') : t('disabled')}: ${u.username}`,
                      )
                    }
                  >
                    {u.disabled ? t('enable') : t('disable')}
                  </button>
                  <button
                    type="button"
                    onClick={() => setReset({ username: u.username, password: '' })}
                  >
                    {t('resetPassword')}
                  </button>
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {reset && (
        <form
          class="admin-form"
          aria-label={t('resetPassword')}
          onSubmit={(e) => {
            e.preventDefault();
            void act(
              `/api/admin/users/${encodeURIComponent(reset.username)}/password`,
              { password: reset.password, mustChange: true },
              `${t('passwordReset')}: ${reset.username}`,
            ).then(() => setReset(null));
          }}
        >
          <h3>
            {t('resetPassword')}: {reset.username}
          </h3>
          <Field
            label={t('temporaryPassword')}
            name="temporary-password"
            type="password"
            autocomplete="new-password"
            minLength={10}
            required
            value={reset.password}
            onInput={(v) => setReset({ ...reset, password: v })}
          />
          <p class="muted wide">{t('temporaryPasswordHint')}</p>
          <div class="actions">
            <button type="submit" class="primary">
              {t('save')}
            </button>
            <button type="button" onClick={() => setReset(null)}>
              {t('cancel')}
            </button>
          </div>
        </form>
      )}
      {!form && (
        <button
          type="button"
          class="primary"
          onClick={() =>
            setForm({
              username: '',
              displayName: '',
              institution: institutions[0]?.code ?? '',
              roles: [],
              credentials: [],
              password: '',
              services: '',
              isNew: true,
            })
          }
        >
          {t('newUser')}
        </button>
      )}
      {form && (
        <form class="admin-form" onSubmit={save} aria-label={t('user')}>
          <Field
            label={t('username')}
            name="new-username"
            required
            readOnly={!form.isNew}
            value={form.username}
            onInput={(v) => setForm({ ...form, username: v })}
          />
          <Field
            label={t('name')}
            name="display-name"
            value={form.displayName}
            onInput={(v) => setForm({ ...form, displayName: v })}
          />
          <InstitutionSelect
            label={t('homeInstitution')}
            name="institution"
            value={form.institution}
            institutions={institutions}
            onChange={(code) => setForm({ ...form, institution: code })}
          />
          {form.isNew && (
            <Field
              label={t('initialPassword')}
              name="initial-password"
              type="password"
              autocomplete="new-password"
              minLength={10}
              required
              value={form.password}
              onInput={(v) => setForm({ ...form, password: v })}
            />
          )}
          <fieldset class="wide">
            <legend>{t('roles')}</legend>
            {ROLES.map((r) => (
              <label class="check">
                <input
                  type="checkbox"
                  name={`role-${r}`}
                  checked={form.roles.includes(r)}
                  onChange={() => setForm({ ...form, roles: toggle(form.roles, r) })}
                />
                {t(`role_${r}` as Key)}
              </label>
            ))}
          </fieldset>
          <fieldset class="wide">
            <legend>{t('credentials')}</legend>
            {institutions
              .filter((i) => i.code !== form.institution)
              .map((i) => (
                <label class="check">
                  <input
                    type="checkbox"
                    name={`credential-${i.code}`}
                    checked={form.credentials.includes(i.code)}
                    onChange={() =>
                      setForm({ ...form, credentials: toggle(form.credentials, i.code) })
                    }
                  />
                  {i.code}
                </label>
              ))}
          </fieldset>
          <label class="wide">
            {t('readerServices')}
            <input
              name="services"
              value={form.services}
              placeholder="neuro, chest"
              onInput={(e) => setForm({ ...form, services: e.currentTarget.value })}
            />
          </label>
          {form.isNew && <p class="muted wide">{t('temporaryPasswordHint')}</p>}
          <div class="actions">
            <button type="submit" class="primary">
              {t('save')}
            </button>
            <button type="button" onClick={() => setForm(null)}>
              {t('cancel')}
            </button>
          </div>
        </form>
      )}
    </div>
  );
}

// ---- Reading services --------------------------------------------------------------------

const ONCALL_SERVICES = [
  'cardiology',
  'ecg',
  'neurology',
  'radiology',
  'trauma',
  'obstetrics',
  'neonatology',
];

// On-call rosters: who answers emergency alerts for a service of an institution, by shift.
function OnCall() {
  const [institutions] = useInstitutions();
  const [code, setCode] = useState('');
  const [shifts, setShifts] = useState<Shift[]>([]);
  const [error, setError] = useState('');
  const [ok, setOk] = useState('');
  const local = (d: Date) =>
    new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  const [form, setForm] = useState({
    service: 'cardiology',
    role: 'primary',
    user: '',
    startsAt: local(new Date()),
    endsAt: local(new Date(Date.now() + 12 * 3600 * 1000)),
  });
  const inst =
    code || institutions.find((i) => i.level === 'lead')?.code || institutions[0]?.code || '';
  const load = () => {
    if (!inst) return;
    api<{ shifts: Shift[] }>('GET', `/api/oncall?institution=${encodeURIComponent(inst)}`)
      .then((r) => setShifts(r.shifts))
      .catch((e) => setError(message(e)));
  };
  useEffect(load, [inst]);
  const add = async () => {
    try {
      const s = await api<Shift>('POST', '/api/oncall', {
        institution: inst,
        service: form.service,
        role: form.role,
        user: form.user,
        startsAt: new Date(form.startsAt).toISOString(),
        endsAt: new Date(form.endsAt).toISOString(),
      });
      setOk(`${t('saved')}: ${s.user} ${t(`role_${s.role}` as Key)}`);
      setError('');
      load();
    } catch (e) {
      setError(message(e));
    }
  };
  const remove = async (s: Shift) => {
    try {
      await api('DELETE', `/api/oncall/${s.id}`);
      setOk(`${t('removed')}: ${s.user}`);
      load();
    } catch (e) {
      setError(message(e));
    }
  };
  const now = Date.now();
  return (
    <div class="admin-body">
      <p class="muted">{t('oncallHint')}</p>
      <Notice error={error} ok={ok} />
      <InstitutionSelect
        label={t('admin_institutions')}
        name="oncall-institution"
        value={inst}
        institutions={institutions}
        onChange={setCode}
      />
      <table class="tasks admin-table" aria-label={t('admin_oncall')}>
        <Head cols={['oncallService', 'oncallRole', 'user', 'startsAt', 'endsAt', '']} />
        <tbody>
          {shifts.map((s) => (
            <tr
              data-shift={s.id}
              class={Date.parse(s.startsAt) <= now && Date.parse(s.endsAt) > now ? 'now' : ''}
            >
              <td>{t(`svc_${s.service}` as Key)}</td>
              <td>{t(`role_${s.role}` as Key)}</td>
              <td>{s.user}</td>
              <td>{dateTime(s.startsAt)}</td>
              <td>{dateTime(s.endsAt)}</td>
              <td>
                <button type="button" onClick={() => remove(s)}>
                  {t('remove')}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <AddForm title={t('newShift')} onSubmit={() => void add()}>
        <label>
          {t('oncallService')}
          <select
            name="service"
            value={form.service}
            onChange={(e) => setForm({ ...form, service: e.currentTarget.value })}
          >
            {ONCALL_SERVICES.map((x) => (
              <option value={x}>{t(`svc_${x}` as Key)}</option>
            ))}
          </select>
        </label>
        <Choice
          label={t('oncallRole')}
          name="role"
          value={form.role}
          options={[
            ['primary', 'role_primary'],
            ['backup', 'role_backup'],
          ]}
          onChange={(role) => setForm({ ...form, role })}
        />
        <Field
          label={t('user')}
          name="user"
          value={form.user}
          required
          onInput={(v) => setForm({ ...form, user: v })}
        />
        <Field
          label={t('startsAt')}
          name="startsAt"
          type="datetime-local"
          value={form.startsAt}
          required
          onInput={(v) => setForm({ ...form, startsAt: v })}
        />
        <Field
          label={t('endsAt')}
          name="endsAt"
          type="datetime-local"
          value={form.endsAt}
          required
          onInput={(v) => setForm({ ...form, endsAt: v })}
        />
        <button type="submit" class="primary">
          {t('add')}
        </button>
      </AddForm>
    </div>
  );
}

function Services() {
  const [services, setServices] = useState<ReadingService[]>([]);
  const [institutions] = useInstitutions();
  const [form, setForm] = useState<ReadingService>({
    provider: '',
    client: '',
    service: 'imaging',
  });
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState('');
  const [ok, setOk] = useState('');
  const load = () => {
    api<{ readingServices: ReadingService[] }>('GET', '/api/admin/reading-services')
      .then((r) => setServices(r.readingServices))
      .catch((e) => setError(message(e)))
      .finally(() => setLoaded(true));
  };
  useEffect(load, []);
  const change = async (path: string, rs: ReadingService, text: string) => {
    try {
      await api('POST', path, rs);
      setOk(`${text}: ${rs.provider} → ${rs.client} (${t(`svc_${rs.service}` as Key)})`);
      setError('');
      load();
    } catch (e) {
      setError(message(e));
    }
  };
  const name = (code: string) => institutions.find((i) => i.code === code)?.name ?? code;
  return (
    <div class="admin-body" data-loaded={loaded ? '' : undefined}>
      <p class="muted">
        {t('readingServicesHint')} {t('fromFileHint')}
      </p>
      <Notice error={error} ok={ok} />
      <table class="tasks admin-table" aria-label={t('admin_services')}>
        <Head cols={['provider', 'client', 'service', '']} />
        <tbody>
          {services.map((s) => (
            <tr data-service={`${s.provider}:${s.client}:${s.service}`}>
              <td>{`${s.provider} · ${name(s.provider)}`}</td>
              <td>{`${s.client} · ${name(s.client)}`}</td>
              <td>
                {t(`svc_${s.service}` as Key)} <FileBadge on={s.fromFile} />
              </td>
              <td>
                <button
                  type="button"
                  onClick={() => change('/api/admin/reading-services/remove', s, t('removed'))}
                >
                  {t('remove')}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <AddForm
        title={t('newReadingService')}
        onSubmit={() => void change('/api/admin/reading-services', form, t('saved'))}
      >
        {(['provider', 'client'] as const).map((k) => (
          <InstitutionSelect
            label={t(k)}
            name={k}
            value={form[k]}
            institutions={institutions}
            onChange={(code) => setForm({ ...form, [k]: code })}
            required
            blank
          />
        ))}
        <label>
          {t('service')}
          <select
            name="kind"
            value={form.service}
            onChange={(e) =>
              setForm({ ...form, service: e.currentTarget.value as ReadingService['service'] })
            }
          >
            <option value="imaging">{t('svc_imaging')}</option>
            <option value="ecg">{t('svc_ecg')}</option>
          </select>
        </label>
        <div class="actions">
          <button type="submit" class="primary">
            {t('add')}
          </button>
        </div>
      </AddForm>
    </div>
  );
}

// ---- Township edge nodes ------------------------------------------------------------------

interface EdgeTransfer {
  name: string;
  institution: string;
  revoked: boolean;
  lastTransferAt: string | null;
  receiving: number;
  receivingBytes: number;
  receivingLength: number;
  storedLastDay: number;
}

const megabytes = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;

function Edges() {
  const [edges, setEdges] = useState<EdgeTransfer[]>([]);
  const [institutions] = useInstitutions();
  const [form, setForm] = useState({ name: '', institution: '' });
  const [token, setToken] = useState('');
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState('');
  const [ok, setOk] = useState('');
  const load = () => {
    api<{ edges: EdgeTransfer[] }>('GET', '/api/admin/edge-transfers')
      .then((r) => setEdges(r.edges))
      .catch((e) => setError(message(e)))
      .finally(() => setLoaded(true));
  };
  useEffect(load, []);
  const issue = async () => {
    try {
      const made = await api<{ name: string; token: string }>('POST', '/api/admin/edges', form);
      setToken(made.token);
      setOk(`${t('saved')}: ${made.name}`);
      setError('');
      setForm({ name: '', institution: '' });
      load();
    } catch (e) {
      setError(message(e));
    }
  };
  const revoke = async (name: string) => {
    if (!window.confirm(t('confirmRevoke'))) return;
    try {
      await api('DELETE', `/api/admin/edges/${encodeURIComponent(name)}`);
      setOk(`${t('revokedState')}: ${name}`);
      setToken('');
      setError('');
      load();
    } catch (e) {
      setError(message(e));
    }
  };
  return (
    <div class="admin-body" data-loaded={loaded ? '' : undefined}>
      <p class="muted">{t('edgesHint')}</p>
      <Notice error={error} ok={ok} />
      {token && (
        <p class="ok-note" role="status">
          {t('edgeTokenOnce')} <code data-edge-token>{token}</code>
        </p>
      )}
      <table class="tasks admin-table" aria-label={t('admin_edges')}>
        <Head
          cols={[
            'edgeName',
            'edgeInstitution',
            'lastTransfer',
            'receivingUploads',
            'storedLastDay',
            '',
          ]}
        />
        <tbody>
          {edges.map((e) => (
            <tr data-edge={e.name} class={e.revoked ? 'muted' : ''}>
              <td>{e.name}</td>
              <td>{e.institution}</td>
              <td>{dateTime(e.lastTransferAt) || '—'}</td>
              <td>
                {e.receiving > 0
                  ? `${e.receiving} · ${megabytes(e.receivingBytes)} / ${megabytes(e.receivingLength)}`
                  : '0'}
              </td>
              <td>{e.storedLastDay}</td>
              <td>
                {e.revoked ? (
                  t('revokedState')
                ) : (
                  <button type="button" onClick={() => revoke(e.name)}>
                    {t('revoke')}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <AddForm title={t('newEdge')} onSubmit={() => void issue()}>
        <Field
          label={t('edgeName')}
          name="edge-name"
          value={form.name}
          required
          onInput={(v) => setForm({ ...form, name: v })}
        />
        <InstitutionSelect
          label={t('edgeInstitution')}
          name="edge-institution"
          value={form.institution}
          institutions={institutions}
          onChange={(code) => setForm({ ...form, institution: code })}
          required
          blank
        />
        <div class="actions">
          <button type="submit" class="primary">
            {t('add')}
          </button>
        </div>
      </AddForm>
    </div>
  );
}

// ---- Queue rules and targets -------------------------------------------------------------

interface RuleRow {
  service?: string;
  priority?: string;
  reason?: string;
  modalities: string[];
  body_parts: string[];
  institutions: string[];
  text_contains: string[];
}
const MATCH_KEYS = ['modalities', 'body_parts', 'institutions', 'text_contains'] as const;

function RuleTable(props: {
  setting: Setting;
  kind: 'routes' | 'priority_rules';
  onSave: (rows: RuleRow[]) => void;
}) {
  const [rows, setRows] = useState<RuleRow[]>(props.setting.value as RuleRow[]);
  useEffect(() => setRows(props.setting.value as RuleRow[]), [props.setting]);
  const set = (i: number, patch: Partial<RuleRow>) =>
    setRows(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  const blank: RuleRow =
    props.kind === 'routes'
      ? { service: '', modalities: [], body_parts: [], institutions: [], text_contains: [] }
      : {
          priority: 'stat',
          reason: '',
          modalities: [],
          body_parts: [],
          institutions: [],
          text_contains: [],
        };
  return (
    <div class="rule-table" data-setting={props.kind}>
      <table class="tasks admin-table">
        <thead>
          <tr>
            {props.kind === 'routes' ? (
              <th>{t('service')}</th>
            ) : (
              <>
                <th>{t('priority')}</th>
                <th>{t('reason')}</th>
              </>
            )}
            {MATCH_KEYS.map((k) => (
              <th>{t(`match_${k}` as Key)}</th>
            ))}
            <th />
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr>
              {props.kind === 'routes' ? (
                <td>
                  <input
                    aria-label={t('service')}
                    value={r.service}
                    onInput={(e) => set(i, { service: e.currentTarget.value })}
                  />
                </td>
              ) : (
                <>
                  <td>
                    <select
                      aria-label={t('priority')}
                      value={r.priority}
                      onChange={(e) => set(i, { priority: e.currentTarget.value })}
                    >
                      {['stat', 'urgent', 'routine'].map((p) => (
                        <option value={p}>{t(p as Key)}</option>
                      ))}
                    </select>
                  </td>
                  <td>
                    <input
                      aria-label={t('reason')}
                      value={r.reason}
                      onInput={(e) => set(i, { reason: e.currentTarget.value })}
                    />
                  </td>
                </>
              )}
              {MATCH_KEYS.map((k) => (
                <td>
                  <input
                    aria-label={t(`match_${k}` as Key)}
                    value={r[k].join(', ')}
                    onChange={(e) => set(i, { [k]: list(e.currentTarget.value) })}
                  />
                </td>
              ))}
              <td>
                <button type="button" onClick={() => setRows(rows.filter((_, j) => j !== i))}>
                  {t('remove')}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="actions">
        <button type="button" onClick={() => setRows([...rows, blank])}>
          {t('addRule')}
        </button>
        <button type="button" class="primary" onClick={() => props.onSave(rows)}>
          {t('save')}
        </button>
      </div>
    </div>
  );
}

function SourceNote({ s }: { s: Setting }) {
  if (s.source === 'screen') {
    return (
      <small class="source screen">
        {t('src_screen')}: {s.changedBy} · {dateTime(s.changedAt)}
      </small>
    );
  }
  return <small class={`source ${s.source}`}>{t(`src_${s.source}` as Key)}</small>;
}

function Rules() {
  const [settings, setSettings] = useState<Setting[]>([]);
  const [drafts, setDrafts] = useState<Record<string, string>>({});
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState('');
  const [ok, setOk] = useState('');
  const load = () => {
    api<{ settings: Setting[] }>('GET', '/api/admin/settings/queue')
      .then((r) => {
        setSettings(r.settings);
        setDrafts({});
      })
      .catch((e) => setError(message(e)))
      .finally(() => setLoaded(true));
  };
  useEffect(load, []);
  const save = async (key: string, value: unknown) => {
    try {
      await api('PUT', `/api/admin/settings/queue/${key}`, { value });
      setOk(`${t('saved')}: ${t(`set_${key}` as Key)}`);
      setError('');
      load();
    } catch (e) {
      setError(message(e));
    }
  };
  const resetTo = async (key: string) => {
    try {
      await api('DELETE', `/api/admin/settings/queue/${key}`);
      setOk(`${t('resetToFile')}: ${t(`set_${key}` as Key)}`);
      load();
    } catch (e) {
      setError(message(e));
    }
  };
  const scalar = settings.filter((s) => s.key !== 'routes' && s.key !== 'priority_rules');
  const rules = settings.filter((s) => s.key === 'routes' || s.key === 'priority_rules');
  return (
    <div class="admin-body" data-loaded={loaded ? '' : undefined}>
      <p class="muted">{t('settingsHint')}</p>
      <Notice error={error} ok={ok} />
      <table class="tasks admin-table settings" aria-label={t('admin_rules')}>
        <tbody>
          {scalar.map((s) => (
            <tr data-setting={s.key}>
              <th scope="row">{t(`set_${s.key}` as Key)}</th>
              <td>
                <form
                  class="inline"
                  onSubmit={(e) => {
                    e.preventDefault();
                    const text = drafts[s.key] ?? String(s.value);
                    void save(s.key, typeof s.value === 'number' ? Number(text) : text);
                  }}
                >
                  <input
                    name={s.key}
                    aria-label={t(`set_${s.key}` as Key)}
                    type={typeof s.value === 'number' ? 'number' : 'text'}
                    step="any"
                    value={drafts[s.key] ?? String(s.value)}
                    onInput={(e) => setDrafts({ ...drafts, [s.key]: e.currentTarget.value })}
                  />
                  <button type="submit">{t('save')}</button>
                </form>
              </td>
              <td>
                <SourceNote s={s} />
                {s.source === 'screen' && (
                  <button type="button" class="link" onClick={() => resetTo(s.key)}>
                    {t('resetToFile')} ({String(s.fileValue)})
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {rules.map((s) => (
        <section class="rules" aria-label={t(`set_${s.key}` as Key)}>
          <h3>
            {t(`set_${s.key}` as Key)} <SourceNote s={s} />
            {s.source === 'screen' && (
              <button type="button" class="link" onClick={() => resetTo(s.key)}>
                {t('resetToFile')}
              </button>
            )}
          </h3>
          <RuleTable
            setting={s}
            kind={s.key as 'routes' | 'priority_rules'}
            onSave={(rows) => save(s.key, rows)}
          />
        </section>
      ))}
    </div>
  );
}

// ---- Mutual recognition of results (检查检验结果互认) --------------------------------------

interface RuleKey {
  code?: string;
  modality?: string;
}
interface RecognitionRule extends RuleKey {
  qualifications: string[];
  validDays: number;
}
type EntrySource = 'file' | 'edited' | 'added';
interface RecognitionRow extends RecognitionRule {
  name?: string; // the test's name, as results have given it
  source: EntrySource;
  removed: boolean;
  edited?: { by: string; at: string };
  file?: RecognitionRule;
}
interface QualificationRow {
  holder: string;
  qualification: string;
  source: EntrySource;
  removed: boolean;
  edited?: { by: string; at: string };
  file?: string;
}
interface UnqualifiedLab {
  holder: string;
  institution: string;
  results: number;
  lastReceivedAt: string;
}
interface RecognitionTable {
  rules: RecognitionRow[];
  qualifications: QualificationRow[];
  unqualified: UnqualifiedLab[];
  // The LOINC tests that results have named.
  tests: { code: string; name: string; results: number }[];
}

// Where a row came from, whether it is in force, who changed it last.
function EntryState(props: {
  source: EntrySource;
  removed: boolean;
  edited?: { by: string; at: string };
  was?: string;
}) {
  return (
    <>
      <small class={`source ${props.source}`}>{t(`src_${props.source}` as Key)}</small>{' '}
      {props.removed && <small class="source removed">{t('notInForce')}</small>}
      {props.was && (
        <small class="muted">
          {' '}
          {t('fileSays')}: {props.was}
        </small>
      )}
      {props.edited && (
        <div>
          <LastChange c={{ ...props.edited, action: '' }} />
        </div>
      )}
    </>
  );
}

type SendEdit = (method: 'PUT' | 'POST', path: string, body: object, text: string) => void;

// A row's buttons: edit and remove while in force (an entry added here is dropped, one of the
// file's taken out), restore the file's entry while edited or taken out.
function EntryActions(props: {
  entry: { source: EntrySource; removed: boolean };
  name: string;
  path: string;
  body: object;
  onEdit: () => void;
  change: SendEdit;
}) {
  const { entry, name, path, body, change } = props;
  return (
    <td class="actions">
      {!entry.removed && (
        <>
          <button type="button" onClick={props.onEdit}>
            {t('edit')}
          </button>
          <button
            type="button"
            onClick={() =>
              change(
                'POST',
                `${path}/${entry.source === 'added' ? 'restore' : 'remove'}`,
                body,
                `${t('removed')}: ${name}`,
              )
            }
          >
            {t('remove')}
          </button>
        </>
      )}
      {(entry.source === 'edited' || entry.removed) && (
        <button
          type="button"
          onClick={() => change('POST', `${path}/restore`, body, `${t('restored')}: ${name}`)}
        >
          {t('restore')}
        </button>
      )}
    </td>
  );
}

const ruleName = (r: RuleKey) => r.code ?? r.modality ?? '';
const ruleKey = (r: RuleKey): RuleKey => (r.code ? { code: r.code } : { modality: r.modality });

function RecognitionPage() {
  const [table, setTable] = useState<RecognitionTable | null>(null);
  const [institutions] = useInstitutions();
  // A holder that is a member's code, with the member's name.
  const holderName = (h: string) => {
    const i = institutions.find((x) => x.code === h);
    return i ? `${h} · ${i.name}` : h;
  };
  const [error, setError] = useState('');
  const [ok, setOk] = useState('');
  const [rule, setRule] = useState({ kind: 'code', key: '', qualifications: '', validDays: '30' });
  const [qual, setQual] = useState({ holder: '', qualification: '' });
  useEffect(() => {
    api<RecognitionTable>('GET', '/api/admin/lab/recognition')
      .then(setTable)
      .catch((e) => setError(message(e)));
  }, []);
  // Every change answers with the whole table as it now stands.
  const change: SendEdit = async (method, path, body, text) => {
    try {
      setTable(await api<RecognitionTable>(method, `/api/admin/lab/${path}`, body));
      setOk(text);
      setError('');
    } catch (e) {
      setError(message(e));
    }
  };
  const editRule = (r: RecognitionRow) =>
    setRule({
      kind: r.code ? 'code' : 'modality',
      key: ruleName(r),
      qualifications: r.qualifications.join(', '),
      validDays: String(r.validDays),
    });
  return (
    <div class="admin-body recognition" data-loaded={table ? '' : undefined}>
      <p class="muted">{t('recognitionHint')}</p>
      <Notice error={error} ok={ok} />
      <h3>{t('recognitionRules')}</h3>
      <table class="tasks admin-table" aria-label={t('recognitionRules')}>
        <Head cols={['testOrModality', 'acceptedQualifications', 'validDays', 'entrySource', '']} />
        <tbody>
          {table?.rules.map((r) => (
            <tr data-rule={ruleName(r)} class={r.removed ? 'off' : ''}>
              <td>
                {r.code ? `LOINC ${r.code}` : r.modality}
                {r.name && <div class="muted">{r.name}</div>}
              </td>
              <td>{r.qualifications.join(', ')}</td>
              <td>{r.validDays || ''}</td>
              <td>
                <EntryState
                  source={r.source}
                  removed={r.removed}
                  edited={r.edited}
                  was={
                    r.file && !r.removed
                      ? `${r.file.qualifications.join(', ')} · ${r.file.validDays}`
                      : undefined
                  }
                />
              </td>
              <EntryActions
                entry={r}
                name={ruleName(r)}
                path="recognition/rules"
                body={ruleKey(r)}
                onEdit={() => editRule(r)}
                change={change}
              />
            </tr>
          ))}
        </tbody>
      </table>
      <AddForm
        title={t('setRecognitionRule')}
        onSubmit={() =>
          void change(
            'PUT',
            'recognition/rules',
            {
              [rule.kind]: rule.key.trim(),
              qualifications: list(rule.qualifications),
              validDays: Number(rule.validDays),
            },
            `${t('saved')}: ${rule.key.trim()}`,
          )
        }
      >
        <Choice
          label={t('ruleKind')}
          name="rule-kind"
          value={rule.kind}
          options={[
            ['code', 'kindLoinc'],
            ['modality', 'kindModality'],
          ]}
          onChange={(kind) => setRule({ ...rule, kind })}
        />
        <Field
          label={rule.kind === 'code' ? 'LOINC' : t('modality')}
          name="rule-key"
          value={rule.key}
          placeholder={rule.kind === 'code' ? '2345-7' : 'CT'}
          onInput={(v) => setRule({ ...rule, key: v })}
          list={rule.kind === 'code' ? 'known-tests' : undefined}
          required
        />
        {/* The tests results have named, chosen by name or code. */}
        <datalist id="known-tests">
          {table?.tests.map((x) => (
            <option value={x.code}>
              {x.name} · {x.results}
            </option>
          ))}
        </datalist>
        <Field
          label={t('acceptedQualifications')}
          name="rule-qualifications"
          value={rule.qualifications}
          placeholder="iso15189, provincial_eqa"
          onInput={(v) => setRule({ ...rule, qualifications: v })}
          required
        />
        <Field
          label={t('validDays')}
          name="rule-days"
          type="number"
          min={1}
          max={3650}
          value={rule.validDays}
          onInput={(v) => setRule({ ...rule, validDays: v })}
          required
        />
        <div class="actions">
          <button type="submit" class="primary">
            {t('save')}
          </button>
        </div>
      </AddForm>

      <h3>{t('labQualifications')}</h3>
      <table class="tasks admin-table" aria-label={t('labQualifications')}>
        <Head cols={['holder', 'qualification', 'entrySource', '']} />
        <tbody>
          {table?.qualifications.map((q) => (
            <tr data-holder={q.holder} class={q.removed ? 'off' : ''}>
              <td>{holderName(q.holder)}</td>
              <td>{q.removed ? '' : q.qualification}</td>
              <td>
                <EntryState
                  source={q.source}
                  removed={q.removed}
                  edited={q.edited}
                  was={q.file && !q.removed ? q.file : undefined}
                />
              </td>
              <EntryActions
                entry={q}
                name={q.holder}
                path="qualifications"
                body={{ holder: q.holder }}
                onEdit={() => setQual({ holder: q.holder, qualification: q.qualification })}
                change={change}
              />
            </tr>
          ))}
        </tbody>
      </table>
      {table && table.unqualified.length > 0 && (
        <>
          <p class="muted">{t('unqualifiedHint')}</p>
          <table class="tasks admin-table" aria-label={t('unqualifiedLabs')}>
            <Head cols={['holder', 'sender', 'resultsCount', 'lastReceived', '']} />
            <tbody>
              {table.unqualified.map((l) => (
                <tr data-unqualified={l.holder}>
                  <td>{l.holder}</td>
                  <td>{holderName(l.institution)}</td>
                  <td>{l.results}</td>
                  <td>{dateTime(l.lastReceivedAt)}</td>
                  <td class="actions">
                    <button
                      type="button"
                      onClick={() => setQual({ holder: l.holder, qualification: '' })}
                    >
                      {t('setQualification')}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <AddForm
        title={t('setQualification')}
        onSubmit={() =>
          void change(
            'PUT',
            'qualifications',
            { holder: qual.holder.trim(), qualification: qual.qualification.trim() },
            `${t('saved')}: ${qual.holder.trim()}`,
          )
        }
      >
        <Field
          label={t('holder')}
          name="holder"
          value={qual.holder}
          onInput={(v) => setQual({ ...qual, holder: v })}
          required
        />
        <Field
          label={t('qualification')}
          name="qualification"
          value={qual.qualification}
          placeholder="iso15189"
          onInput={(v) => setQual({ ...qual, qualification: v })}
          required
        />
        <div class="actions">
          <button type="submit" class="primary">
            {t('save')}
          </button>
        </div>
      </AddForm>
    </div>
  );
}

// ---- Audit trail ---------------------------------------------------------------------------

const ACTIONS = [
  '',
  'auth.',
  'user.',
  'institution.',
  'reading_service.',
  'setting.',
  'lab.',
  'study.',
  'dicom.',
  'report.',
  'consult.',
];

function Audit() {
  const [filter, setFilter] = useState({
    actor: '',
    action: '',
    object: '',
    institution: '',
    from: '',
    to: '',
  });
  const [records, setRecords] = useState<AuditRecord[]>([]);
  const [error, setError] = useState('');
  const [chain, setChain] = useState<{
    intact: boolean;
    records: number;
    checkedAt: string;
    firstBadSeq?: number;
    problem?: string;
  } | null>(null);
  const query = (before = 0) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) {
      if (!v) continue;
      q.set(k, k === 'from' || k === 'to' ? new Date(v).toISOString() : v);
    }
    if (before) q.set('before', String(before));
    return q;
  };
  const search = (before = 0) => {
    api<{ records: AuditRecord[] }>('GET', `/api/audit?${query(before)}`)
      .then((r) => {
        setRecords(before ? [...records, ...r.records] : r.records);
        setError('');
      })
      .catch((e) => setError(message(e)));
  };
  useEffect(() => search(), []);
  const verify = () => {
    setChain(null);
    api<NonNullable<typeof chain>>('GET', '/api/audit/verify')
      .then(setChain)
      .catch((e) => setError(message(e)));
  };
  const exportCsv = async () => {
    const q = query();
    q.set('format', 'csv');
    const res = await fetch(`/api/audit?${q}`, {
      headers: { Authorization: `Bearer ${currentToken()}` },
    });
    if (!res.ok) {
      setError(`${t('error')}: ${res.status}`);
      return;
    }
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = `yilian-audit-${new Date().toISOString().slice(0, 10)}.csv`;
    a.click();
    URL.revokeObjectURL(url);
  };
  const set = (k: keyof typeof filter, v: string) => setFilter({ ...filter, [k]: v });
  return (
    <div class="admin-body">
      <form
        class="admin-form filters"
        aria-label={t('search')}
        onSubmit={(e) => {
          e.preventDefault();
          search();
        }}
      >
        <Field
          label={t('actor')}
          name="actor"
          value={filter.actor}
          onInput={(v) => set('actor', v)}
        />
        <label>
          {t('action')}
          <select
            name="action"
            value={filter.action}
            onChange={(e) => set('action', e.currentTarget.value)}
          >
            {ACTIONS.map((a) => (
              <option value={a}>{a ? `${a}*` : t('all')}</option>
            ))}
          </select>
        </label>
        <Field
          label={t('object')}
          name="object"
          value={filter.object}
          onInput={(v) => set('object', v)}
        />
        <Field
          label={t('homeInstitution')}
          name="institution"
          value={filter.institution}
          onInput={(v) => set('institution', v)}
        />
        <Field
          label={t('from')}
          name="from"
          type="datetime-local"
          value={filter.from}
          onInput={(v) => set('from', v)}
        />
        <Field
          label={t('to')}
          name="to"
          type="datetime-local"
          value={filter.to}
          onInput={(v) => set('to', v)}
        />
        <div class="actions">
          <button type="submit" class="primary">
            {t('search')}
          </button>
          <button type="button" onClick={exportCsv}>
            CSV
          </button>
          <button type="button" onClick={verify}>
            {t('verifyChain')}
          </button>
        </div>
      </form>
      {chain && (
        <p
          class={chain.intact ? 'ok-note' : 'error'}
          role="status"
          data-chain={chain.intact ? 'intact' : 'broken'}
        >
          {chain.intact
            ? `${t('chainIntact')}: ${chain.records} · ${dateTime(chain.checkedAt)}`
            : `${t('chainBroken')} #${chain.firstBadSeq}: ${chain.problem}`}
        </p>
      )}
      <Notice error={error} />
      <table class="tasks admin-table audit" aria-label={t('admin_audit')}>
        <Head
          cols={['#', 'time', 'actor', 'homeInstitution', 'action', 'object', 'outcome', 'detail']}
        />
        <tbody>
          {records.map((r) => (
            <tr
              data-audit={r.action}
              data-object={r.objectId}
              class={r.outcome !== 'ok' ? 'denied' : ''}
            >
              <td>{r.seq}</td>
              <td>{dateTime(r.at)}</td>
              <td>{r.actor}</td>
              <td>{r.actorInstitution}</td>
              <td>{r.action}</td>
              <td>{`${r.objectType} ${r.objectId}`}</td>
              <td>{r.outcome}</td>
              <td class="detail">{r.detail}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {records.length > 0 && records.length % 100 === 0 && (
        <button type="button" onClick={() => search(records[records.length - 1].seq)}>
          {t('older')}
        </button>
      )}
    </div>
  );
}

// ---- System ------------------------------------------------------------------------------

interface SystemInfo {
  version: string;
  startedAt: string;
  dicom: { aeTitle: string };
  disks: ({ path: string; freeBytes: number; totalBytes: number } | null)[];
  database: { backend: string; indexBytes?: number; auditBytes?: number; bytes?: number };
  queue: { status: string; priority: string; count: number; overdue: number }[];
  lastBackup: {
    createdAt: string;
    to: string;
    blobs: number;
    bytes: number;
    auditIntact: boolean;
  } | null;
}
interface Health {
  status: string;
  ingest: Record<string, number>;
  websocket: Record<string, number>;
  database: { backend: string; reachable: boolean };
  peers: unknown[];
}

const mb = (n: number | undefined) => (n === undefined ? '—' : `${(n / 1048576).toFixed(1)} MB`);
const gb = (n: number) => `${(n / 1073741824).toFixed(1)} GB`;

function Figure(props: { label: string; value: string | number; warn?: boolean; name?: string }) {
  return (
    <div class={props.warn ? 'figure warn' : 'figure'} data-figure={props.name}>
      <span class="value">{props.value}</span>
      <span class="label">{props.label}</span>
    </div>
  );
}

function SystemPage() {
  const [sys, setSys] = useState<SystemInfo | null>(null);
  const [health, setHealth] = useState<Health | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    const load = () => {
      Promise.all([
        api<SystemInfo>('GET', '/api/admin/system'),
        fetch('/healthz').then((r) => r.json() as Promise<Health>),
      ])
        .then(([s, h]) => {
          setSys(s);
          setHealth(h);
          setError('');
        })
        .catch((e) => setError(message(e)));
    };
    load();
    const id = setInterval(load, 5000);
    return () => clearInterval(id);
  }, []);
  if (!sys || !health) return <Notice error={error} />;
  const open = sys.queue.reduce((n, q) => n + q.count, 0);
  const overdue = sys.queue.reduce((n, q) => n + q.overdue, 0);
  const backupAge = sys.lastBackup
    ? (Date.now() - new Date(sys.lastBackup.createdAt).getTime()) / 3600000
    : Infinity;
  return (
    <div class="admin-body system" data-loaded="true">
      <Notice error={error} />
      <h3>{t('ingest')}</h3>
      <div class="figures">
        <Figure name="stored" label={t('stored')} value={health.ingest.stored} />
        <Figure name="duplicates" label={t('duplicates')} value={health.ingest.duplicates} />
        <Figure
          name="rejected"
          label={t('rejected')}
          value={health.ingest.rejected}
          warn={health.ingest.rejected > 0}
        />
        <Figure
          name="failed"
          label={t('failedStores')}
          value={health.ingest.failed}
          warn={health.ingest.failed > 0}
        />
      </div>
      <h3>{t('readingQueue')}</h3>
      <div class="figures">
        <Figure name="open" label={t('openTasks')} value={open} />
        <Figure name="overdue" label={t('overdue')} value={overdue} warn={overdue > 0} />
        {(['stat', 'urgent', 'routine'] as const).map((p) => (
          <Figure
            name={`queue-${p}`}
            label={t(p)}
            value={sys.queue.filter((q) => q.priority === p).reduce((n, q) => n + q.count, 0)}
          />
        ))}
      </div>
      <h3>{t('connections')}</h3>
      <div class="figures">
        <Figure name="ws-open" label={t('wsOpen')} value={health.websocket.open} />
        <Figure
          name="ws-refused"
          label={t('wsRefused')}
          value={health.websocket.refusedConnections ?? 0}
        />
        <Figure
          name="rate-limited"
          label={t('rateLimited')}
          value={health.websocket.rateLimited ?? 0}
        />
        <Figure name="peers" label={t('peers')} value={health.peers.length} />
      </div>
      <h3>{t('storage')}</h3>
      {sys.disks.map(
        (d) =>
          d && (
            <div class="disk" data-disk={d.path}>
              <div class="bar" role="img" aria-label={`${gb(d.freeBytes)} / ${gb(d.totalBytes)}`}>
                <div
                  class={d.freeBytes / d.totalBytes < 0.1 ? 'used warn' : 'used'}
                  style={{ width: `${100 - (100 * d.freeBytes) / Math.max(1, d.totalBytes)}%` }}
                />
              </div>
              <span>
                {d.path}: {t('free')} {gb(d.freeBytes)} / {gb(d.totalBytes)}
              </span>
            </div>
          ),
      )}
      <div class="figures">
        <Figure
          name="db-backend"
          label={t('database')}
          value={`${sys.database.backend}${health.database.reachable ? '' : ' ✗'}`}
          warn={!health.database.reachable}
        />
        {sys.database.bytes !== undefined ? (
          <Figure name="db-size" label={t('databaseSize')} value={mb(sys.database.bytes)} />
        ) : (
          <>
            <Figure name="db-size" label={t('indexSize')} value={mb(sys.database.indexBytes)} />
            <Figure name="audit-size" label={t('auditSize')} value={mb(sys.database.auditBytes)} />
          </>
        )}
        <Figure
          name="backup"
          label={t('lastBackup')}
          value={sys.lastBackup ? dateTime(sys.lastBackup.createdAt) : t('never')}
          warn={backupAge > 26}
        />
      </div>
      <p class="muted">
        {t('version')} {sys.version} · DICOM AE {sys.dicom.aeTitle} · {t('startedAt')}{' '}
        {dateTime(sys.startedAt)}
      </p>
    </div>
  );
}
