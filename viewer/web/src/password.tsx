// A user's own password change. Shown by itself when the password is temporary (the first
// administrator's, or one an administrator set): nothing else works until it is replaced.
import { useState } from 'preact/hooks';
import { api, ApiError, User } from './api';
import { t } from './i18n';

export function PasswordChange(props: {
  forced: boolean;
  onChanged: (token: string, u: User) => void;
  onCancel?: () => void;
}) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setError('');
    if (next !== again) {
      setError(t('passwordsDiffer'));
      return;
    }
    setBusy(true);
    try {
      const r = await api<{ token: string; user: User }>('POST', '/api/auth/password', {
        currentPassword: current,
        newPassword: next,
      });
      props.onChanged(r.token, r.user);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class={props.forced ? 'login' : 'password-page'}>
      <form onSubmit={submit} aria-labelledby="password-title" class="password-form">
        <h2 id="password-title">{t('changePassword')}</h2>
        {props.forced && <p class="tagline">{t('mustChangePassword')}</p>}
        <label>
          {t('currentPassword')}
          <input
            name="current-password"
            type="password"
            autocomplete="current-password"
            required
            value={current}
            onInput={(e) => setCurrent(e.currentTarget.value)}
          />
        </label>
        <label>
          {t('newPassword')}
          <input
            name="new-password"
            type="password"
            autocomplete="new-password"
            required
            minLength={10}
            value={next}
            onInput={(e) => setNext(e.currentTarget.value)}
          />
        </label>
        <label>
          {t('newPasswordAgain')}
          <input
            name="new-password-again"
            type="password"
            autocomplete="new-password"
            required
            minLength={10}
            value={again}
            onInput={(e) => setAgain(e.currentTarget.value)}
          />
        </label>
        <p class="muted">{t('passwordRule')}</p>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {t('save')}
        </button>
        {props.onCancel && (
          <button type="button" class="link" onClick={props.onCancel}>
            {t('cancel')}
          </button>
        )}
      </form>
    </div>
  );
}
