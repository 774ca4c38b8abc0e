import { useState } from 'preact/hooks';
import { api, ApiError, User } from './api';
import { t } from './i18n';

export function Login(props: {
  onLogin: (token: string, u: User) => void;
  onToggleLang: () => void;
}) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const r = await api<{ token: string; user: User }>('POST', '/api/auth/login', {
        username,
        password,
      });
      props.onLogin(r.token, r.user);
    } catch (err) {
      if (err instanceof ApiError && err.status === 429) setError(t('loginLocked'));
      else if (err instanceof ApiError && err.status === 401) setError(t('loginFailed'));
      else setError(`${t('error')}: ${String(err)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="login">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">{t('appName')}</h1>
        <p class="tagline">{t('tagline')}</p>
        <label>
          {t('username')}
          <input
            name="username"
            autocomplete="username"
            required
            autofocus
            value={username}
            onInput={(e) => setUsername(e.currentTarget.value)}
          />
        </label>
        <label>
          {t('password')}
          <input
            name="password"
            type="password"
            autocomplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {t('login')}
        </button>
        <button type="button" class="link" onClick={props.onToggleLang}>
          {t('language')}
        </button>
      </form>
    </div>
  );
}
