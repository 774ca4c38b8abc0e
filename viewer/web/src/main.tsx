// The single-page front end: log in, then the screens the user's roles call for.
import { SlideViewer } from './slide';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, currentToken, onSessionExpired, setToken, User } from './api';
import { currentLang, Lang, setLang, t } from './i18n';
import { Live } from './live';
import { Login } from './login';
import { Reading } from './reading';
import { ReportView, Township } from './township';
import { Worklist } from './worklist';
import { ConsultList, ConsultRoom } from './consult';
import { Alerts } from './alerts';
import { CaseReview, EmergencyBoard } from './emergency';
import { Dashboard } from './dashboard';
import { LabResults } from './lab';
import { Referrals } from './referrals';
import { Notifications } from './notifications';
import { Admin } from './admin';
import { PasswordChange } from './password';
import './styles.css';

const READER_ROLES = ['radiologist', 'pathologist', 'ecg_reader', 'cardiologist', 'qc_reviewer'];
export const isReader = (u: User) => u.roles.some((r) => READER_ROLES.includes(r));

function home(u: User): string {
  if (isReader(u)) return '#/worklist';
  // A hospital physician works the emergency cases.
  if (u.roles.includes('physician')) return '#/emergency';
  return u.roles.includes('admin') && u.roles.length === 1 ? '#/admin/system' : '#/township';
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const f = () => setHash(location.hash);
    window.addEventListener('hashchange', f);
    return () => window.removeEventListener('hashchange', f);
  }, []);
  return hash;
}

function App() {
  const [user, setUser] = useState<User | null>(null);
  const [checking, setChecking] = useState(Boolean(currentToken()));
  const [live, setLive] = useState<Live | null>(null);
  const [online, setOnline] = useState(false);
  const [, setLangState] = useState<Lang>(currentLang());
  const hash = useHash();

  const endSession = () => {
    setToken('');
    setUser(null);
  };
  useEffect(() => {
    onSessionExpired(endSession);
    document.documentElement.lang = currentLang();
    if (!currentToken()) return;
    api<User>('GET', '/api/auth/me')
      .then(setUser)
      .catch(() => endSession())
      .finally(() => setChecking(false));
  }, []);

  useEffect(() => {
    if (!user) return;
    const l = new Live(currentToken());
    l.onState = setOnline;
    setLive(l);
    if (!location.hash || location.hash === '#/') location.hash = home(user);
    return () => {
      l.close();
      setLive(null);
    };
  }, [user]);

  const toggleLang = () => {
    setLang(currentLang() === 'en' ? 'zh-CN' : 'en');
    setLangState(currentLang());
  };

  if (checking) return <p class="loading">{t('loading')}</p>;
  const signedIn = (token: string, u: User) => {
    setToken(token);
    setUser(u);
  };
  if (!user) {
    return <Login onLogin={signedIn} onToggleLang={toggleLang} />;
  }
  // A temporary password: nothing else until it is replaced.
  if (user.mustChangePassword) {
    return <PasswordChange forced onChanged={signedIn} />;
  }

  const logout = async () => {
    try {
      await api('POST', '/api/auth/logout');
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
    endSession();
    location.hash = '';
  };

  const [, route, arg, arg2] = hash.split('/');
  // Quality control correct closed emergency cases' times.
  const qc = user.roles.includes('qc_reviewer');
  let screen;
  if (route === 'admin' && user.roles.includes('admin')) screen = <Admin tab={arg ?? 'system'} />;
  else if (route === 'password')
    screen = (
      <PasswordChange
        forced={false}
        onChanged={(token, u) => {
          signedIn(token, u);
          location.hash = home(u);
        }}
        onCancel={() => (location.hash = home(user))}
      />
    );
  else if (route === 'read' && arg)
    screen = <Reading taskId={Number(arg)} user={user} live={live} />;
  else if (route === 'report' && arg) screen = <ReportView taskId={Number(arg)} live={live} />;
  else if (route === 'township') screen = <Township user={user} live={live} />;
  else if (route === 'emergency' && arg === 'case' && arg2)
    screen = <CaseReview id={Number(arg2)} live={live} correct={qc} />;
  else if (route === 'emergency')
    screen = <EmergencyBoard live={live} closed={arg === 'closed'} correct={qc} />;
  else if (route === 'dashboard') screen = <Dashboard />;
  else if (route === 'slide' && arg && arg2)
    screen = (
      <div class="viewer">
        <SlideViewer study={arg} series={arg2} />
      </div>
    );
  else if (route === 'lab')
    screen = (
      <LabResults
        patientId={decodeURIComponent(arg ?? '')}
        institution={decodeURIComponent(arg2 ?? '')}
      />
    );
  else if (route === 'referrals') screen = <Referrals user={user} live={live} />;
  else if (route === 'consults') screen = <ConsultList user={user} live={live} />;
  else if (route === 'consult' && arg)
    screen = <ConsultRoom id={Number(arg)} user={user} live={live} />;
  else if (isReader(user)) screen = <Worklist user={user} live={live} />;
  else screen = <Township user={user} live={live} />;

  return (
    <div class="app">
      <header class="top">
        <span class="brand">{t('appName')}</span>
        <nav>
          {isReader(user) && <a href="#/worklist">{t('worklist')}</a>}
          {user.roles.includes('township_doctor') && <a href="#/township">{t('township')}</a>}
          {user.roles.some((r) => r !== 'admin') && <a href="#/consults">{t('consults')}</a>}
          {user.roles.some((r) => r !== 'admin') && <a href="#/emergency">{t('emergencyBoard')}</a>}
          {user.roles.some((r) => r !== 'admin') && <a href="#/referrals">{t('referrals')}</a>}
          {user.roles.some((r) => r !== 'admin') && <a href="#/lab">{t('patientRecord')}</a>}
          {(isReader(user) || user.roles.includes('admin')) && (
            <a href="#/dashboard">{t('dashboard')}</a>
          )}
          {user.roles.includes('admin') && <a href="#/admin/system">{t('administration')}</a>}
        </nav>
        <span class="spacer" />
        <span class={online ? 'live on' : 'live off'} role="status">
          {online ? t('live') : t('offline')}
        </span>
        <Notifications live={live} />
        <span class="who">
          {user.displayName || user.username} · {user.institution}
        </span>
        <a href="#/password" class="button-link">
          {t('changePassword')}
        </a>
        <button type="button" onClick={toggleLang}>
          {t('language')}
        </button>
        <button type="button" onClick={logout}>
          {t('logout')}
        </button>
      </header>
      <Alerts live={live} />
      <main>{screen}</main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
