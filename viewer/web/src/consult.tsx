// Consults: the list (one's own, and requests one may take), a new request, and the live room —
// chat that resumes exactly after a reconnect, presence and typing, the shared viewer that
// follows its driver, an audio/video call (WebRTC, signalled through the hub), the opinion.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, personName, User } from './api';
import { dateTime, Key, t } from './i18n';
import { Live, Message } from './live';
import { ImageViewer, ViewState } from './viewer';
import { FormActions, StudyPicker } from './common';

export interface Consult {
  id: number;
  status: string;
  urgency: 'routine' | 'urgent' | 'emergency';
  specialty: string;
  question: string;
  patient: { id: string; name: string };
  institution: string;
  requester: string;
  assignee: string | null;
  reason: string | null;
  createdAt: string;
  lastSeq: number;
  opinion?: { text: string; signedBy: string; signedAt: string; sha256: string };
  attachments?: { kind: string; ref: string; studyInstanceUid: string }[];
  participants?: { user: string; role: string }[];
}
interface Chat {
  seq: number;
  from: string;
  at: string;
  text: string;
  clientId?: string;
}

const SPECIALTIES = ['radiology', 'pathology', 'cardiology', 'ecg'];
const tk = (s: string) => t(s as Key);

export function ConsultList(props: { user: User; live: Live | null }) {
  const [list, setList] = useState<Consult[]>([]);
  const [error, setError] = useState('');
  const [creating, setCreating] = useState(false);
  const load = () =>
    api<{ consults: Consult[] }>('GET', '/api/consults?limit=100')
      .then((r) => setList(r.consults))
      .catch((e) => setError(String(e)));
  useEffect(() => {
    load();
    const offs = [props.live?.on('notification', load), props.live?.on('consult', load)];
    return () => offs.forEach((off) => off?.());
  }, [props.live]);
  const accept = async (id: number) => {
    try {
      await api('POST', `/api/consults/${id}/accept`);
      location.hash = `#/consult/${id}`;
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  };
  return (
    <section class="consults" aria-labelledby="consults-title">
      <div class="toolbar">
        <h2 id="consults-title">{t('consults')}</h2>
        <button type="button" class="primary" onClick={() => setCreating(true)}>
          {t('newConsult')}
        </button>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {creating && <NewConsult onDone={() => setCreating(false)} />}
      <table class="tasks">
        <thead>
          <tr>
            <th>{t('urgency')}</th>
            <th>{t('patient')}</th>
            <th>{t('question')}</th>
            <th>{t('specialty')}</th>
            <th>{t('requester')}</th>
            <th>{t('status')}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.map((c) => (
            <tr
              data-consult={c.id}
              data-status={c.status}
              class={c.urgency === 'emergency' ? 'stat' : c.urgency}
            >
              <td>
                <span class={`badge ${c.urgency === 'emergency' ? 'stat' : c.urgency}`}>
                  {tk(c.urgency)}
                </span>
              </td>
              <td>
                {personName(c.patient.name) || c.patient.id}
                <small>{c.patient.id}</small>
              </td>
              <td>
                <a href={`#/consult/${c.id}`}>{c.question}</a>
              </td>
              <td>{tk(c.specialty)}</td>
              <td>
                {c.requester} · {c.institution}
              </td>
              <td>{tk(c.status)}</td>
              <td>
                {c.status === 'requested' && c.requester !== props.user.username && (
                  <button type="button" onClick={() => accept(c.id)}>
                    {t('accept')}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function NewConsult(props: { onDone: () => void }) {
  const [patientId, setPatientId] = useState('');
  const [patientName, setPatientName] = useState('');
  const [question, setQuestion] = useState('');
  const [urgency, setUrgency] = useState('routine');
  const [specialty, setSpecialty] = useState('radiology');
  const [chosen, setChosen] = useState<string[]>([]);
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const c = await api<Consult>('POST', '/api/consults', {
        patientId,
        patientName,
        question,
        urgency,
        specialty,
        studies: chosen,
      });
      props.onDone();
      location.hash = `#/consult/${c.id}`;
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };
  return (
    <form class="panel new-consult" onSubmit={submit} aria-label={t('newConsult')}>
      <label>
        {t('patientId')}
        <input
          name="patientId"
          required
          value={patientId}
          onInput={(e) => setPatientId(e.currentTarget.value)}
        />
      </label>
      <label>
        {t('patient')}
        <input
          name="patientName"
          value={patientName}
          onInput={(e) => setPatientName(e.currentTarget.value)}
        />
      </label>
      <label class="wide">
        {t('question')}
        <textarea
          name="question"
          required
          rows={3}
          value={question}
          onInput={(e) => setQuestion(e.currentTarget.value)}
        />
      </label>
      <label>
        {t('urgency')}
        <select name="urgency" value={urgency} onChange={(e) => setUrgency(e.currentTarget.value)}>
          {['routine', 'urgent', 'emergency'].map((u) => (
            <option value={u}>{tk(u)}</option>
          ))}
        </select>
      </label>
      <label>
        {t('specialty')}
        <select
          name="specialty"
          value={specialty}
          onChange={(e) => setSpecialty(e.currentTarget.value)}
        >
          {SPECIALTIES.map((s) => (
            <option value={s}>{tk(s)}</option>
          ))}
        </select>
      </label>
      <StudyPicker chosen={chosen} onChange={setChosen} />
      <FormActions error={error} onCancel={props.onDone} />
    </form>
  );
}

export function ConsultRoom(props: { id: number; user: User; live: Live | null }) {
  const { id, user, live } = props;
  const [consult, setConsult] = useState<Consult | null>(null);
  const [messages, setMessages] = useState<Chat[]>([]);
  const [presence, setPresence] = useState<Record<string, string>>({});
  const [typing, setTyping] = useState<Record<string, boolean>>({});
  const [text, setText] = useState('');
  const [error, setError] = useState('');
  const [driver, setDriver] = useState('');
  const [view, setView] = useState<ViewState | null>(null);
  const [opinion, setOpinion] = useState('');
  const lastSeq = useRef(0);
  const typingSent = useRef(0);
  const log = useRef<HTMLOListElement>(null);

  const load = () =>
    api<Consult>('GET', `/api/consults/${id}`)
      .then(setConsult)
      .catch((e) => setError(e instanceof ApiError ? e.message : String(e)));
  useEffect(() => {
    load();
  }, [id]);

  // Join (and re-join after every reconnect) from the last message held: nothing is lost and
  // nothing repeated.
  useEffect(() => {
    if (!live) return;
    const join = () => live.send({ type: 'join', consult: id, afterSeq: lastSeq.current });
    const mine = (m: Message) => m.consult === id || (m.consult as Consult | undefined)?.id === id;
    const offs = [
      live.on('welcome', join),
      live.on('joined', (m) => {
        if ((m.consult as Consult).id !== id) return;
        const p: Record<string, string> = {};
        for (const x of (m.participants as { user: string; presence: string }[]) ?? [])
          p[x.user] = x.presence;
        setPresence(p);
        const v = m.view as { driver?: string; state?: ViewState } | undefined;
        if (v?.driver) setDriver(v.driver);
        if (v?.state?.series) setView(v.state);
      }),
      live.on('chat', (m) => {
        if (!mine(m)) return;
        const seq = Number(m.seq);
        if (seq <= lastSeq.current) return;
        lastSeq.current = seq;
        setMessages((list) => [...list, m as unknown as Chat]);
        live.send({ type: 'receipt', consult: id, delivered: seq, read: seq });
      }),
      live.on('replayed', (m) => {
        if (mine(m) && m.more)
          live.send({ type: 'history', consult: id, afterSeq: lastSeq.current });
      }),
      live.on('presence', (m) => {
        if (mine(m)) setPresence((p) => ({ ...p, [String(m.user)]: String(m.status) }));
      }),
      live.on('typing', (m) => {
        if (mine(m)) setTyping((x) => ({ ...x, [String(m.user)]: Boolean(m.active) }));
      }),
      live.on('view', (m) => {
        if (!mine(m)) return;
        setDriver(String(m.driver ?? ''));
        const state = m.state as ViewState | undefined;
        if (m.driver !== user.username && state?.series) setView(state);
      }),
      // A status change: the full consult (with the opinion once concluded) over REST.
      live.on('consult', (m) => {
        if (mine(m)) load();
      }),
      live.on('error', (m) => setError(String(m.message))),
    ];
    if (live.connected) join();
    return () => {
      offs.forEach((off) => off());
      live.send({ type: 'leave', consult: id });
    };
  }, [live, id]);

  useEffect(() => {
    log.current?.lastElementChild?.scrollIntoView({ block: 'end' });
  }, [messages.length]);

  const send = (e: Event) => {
    e.preventDefault();
    const body = text.trim();
    if (!body || !live) return;
    live.send({
      type: 'chat',
      consult: id,
      text: body,
      clientId: `${user.username}-${Date.now()}`,
    });
    live.send({ type: 'typing', consult: id, active: false });
    setText('');
  };
  const onType = (v: string) => {
    setText(v);
    if (live && Date.now() - typingSent.current > 3000) {
      typingSent.current = Date.now();
      live.send({ type: 'typing', consult: id, active: true });
    }
  };
  const act = async (action: string, body?: object) => {
    try {
      setConsult(await api<Consult>('POST', `/api/consults/${id}/${action}`, body ?? {}));
      setError('');
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  };

  if (!consult) return error ? <p class="error">{error}</p> : <p class="loading">{t('loading')}</p>;
  const specialist = consult.assignee === user.username;
  const live_ = ['accepted', 'in_progress'].includes(consult.status);
  const study = consult.attachments?.find((a) => a.studyInstanceUid)?.studyInstanceUid;
  const others = Object.keys(presence).filter((u) => u !== user.username);
  const typingNow = Object.entries(typing)
    .filter(([u, on]) => on && u !== user.username)
    .map(([u]) => u);
  return (
    <div class="consult-room">
      <div class="task-bar">
        <a href="#/consults">← {t('back')}</a>
        <span class={`badge ${consult.urgency === 'emergency' ? 'stat' : consult.urgency}`}>
          {tk(consult.urgency)}
        </span>
        <strong>{personName(consult.patient.name) || consult.patient.id}</strong>
        {consult.patient.id && (
          <a
            class="lab-link"
            href={`#/lab/${encodeURIComponent(consult.patient.id)}/${encodeURIComponent(consult.institution)}`}
          >
            {t('patientRecord')}
          </a>
        )}
        <span>{consult.question}</span>
        <span class="status" data-status={consult.status}>
          {tk(consult.status)}
        </span>
        <span class="spacer" />
        <ul class="presence" aria-label={t('participants')}>
          {Object.entries(presence).map(([u, p]) => (
            <li class={`presence-${p}`} data-user={u}>
              {u} · {tk(p === 'offline' ? 'offline_' : p)}
            </li>
          ))}
        </ul>
        {consult.status === 'accepted' && specialist && (
          <button type="button" onClick={() => act('start')}>
            {t('startConsult')}
          </button>
        )}
        {consult.status === 'requested' && consult.requester === user.username && (
          <button type="button" onClick={() => act('cancel', { reason: 'cancelled by requester' })}>
            {t('cancel')}
          </button>
        )}
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="reading-body">
        {study ? (
          <div class="shared-view">
            <div class="tools">
              <span>
                {t('driver')}: {driver || '—'}
              </span>
              {live_ && driver !== user.username && (
                <button type="button" onClick={() => live?.send({ type: 'drive', consult: id })}>
                  {t('takeLead')}
                </button>
              )}
              {live_ && others.length > 0 && <Call live={live} consult={id} peer={others[0]} />}
            </div>
            <ImageViewer
              study={study}
              lowBandwidth={true}
              follow={driver !== user.username ? view : null}
              onViewChange={
                driver === user.username
                  ? (s) => live?.send({ type: 'view', consult: id, state: s })
                  : undefined
              }
            />
          </div>
        ) : (
          <div class="shared-view empty">{t('noAttachments')}</div>
        )}
        <section class="chat" aria-labelledby="chat-title">
          <h3 id="chat-title">{t('chat')}</h3>
          <ol class="messages" ref={log} aria-live="polite">
            {messages.map((m) => (
              <li class={m.from === user.username ? 'mine' : ''} data-seq={m.seq}>
                <span class="from">{m.from}</span> <time>{dateTime(m.at)}</time>
                <p>{m.text}</p>
              </li>
            ))}
          </ol>
          <p class="typing">{typingNow.length ? `${typingNow.join(', ')} ${t('isTyping')}` : ''}</p>
          {live_ && (
            <form onSubmit={send} class="send">
              <input
                name="chat"
                aria-label={t('message')}
                value={text}
                autocomplete="off"
                onInput={(e) => onType(e.currentTarget.value)}
              />
              <button type="submit" class="primary">
                {t('send')}
              </button>
            </form>
          )}
          {consult.opinion ? (
            <div class="opinion" data-sha256={consult.opinion.sha256}>
              <h4>{t('opinion')}</h4>
              <p>{consult.opinion.text}</p>
              <p class="signed">
                {t('signedBy')} {consult.opinion.signedBy} · {dateTime(consult.opinion.signedAt)}
              </p>
            </div>
          ) : (
            live_ &&
            specialist && (
              <div class="conclude">
                <label>
                  {t('opinion')}
                  <textarea
                    name="opinion"
                    rows={3}
                    value={opinion}
                    onInput={(e) => setOpinion(e.currentTarget.value)}
                  />
                </label>
                <button
                  type="button"
                  class="primary"
                  disabled={!opinion.trim()}
                  onClick={() => act('conclude', { opinion })}
                >
                  {t('conclude')}
                </button>
              </div>
            )
          )}
        </section>
      </div>
    </div>
  );
}

// An audio/video call with one other participant: the hub relays offer, answer, ICE candidates
// and hang-up; media flow browser to browser.
function Call(props: { live: Live | null; consult: number; peer: string }) {
  const { live, consult, peer } = props;
  const [state, setState] = useState<'idle' | 'calling' | 'in_call'>('idle');
  const pc = useRef<RTCPeerConnection | null>(null);
  // The other side's ICE candidates that came before its description: added once it is set.
  const pending = useRef<RTCIceCandidateInit[]>([]);
  const local = useRef<HTMLVideoElement>(null);
  const remote = useRef<HTMLVideoElement>(null);
  const signal = (kind: string, data: unknown) =>
    live?.send({ type: 'rtc', consult, to: peer, signal: kind, data });

  const connection = async () => {
    // The consortium's STUN and TURN servers, so that a call reaches across the clinics' NATs;
    // without them (none configured, or the hub not answering) a call works within one network.
    const ice = await api<{ iceServers: RTCIceServer[] }>('GET', '/api/calls/ice-servers').catch(
      () => ({ iceServers: [] }),
    );
    const c = new RTCPeerConnection({ iceServers: ice.iceServers });
    c.onicecandidate = (e) => e.candidate && signal('ice', e.candidate.toJSON());
    c.ontrack = (e) => {
      if (remote.current) remote.current.srcObject = e.streams[0] ?? null;
      setState('in_call');
    };
    const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    media.getTracks().forEach((tr) => c.addTrack(tr, media));
    if (local.current) local.current.srcObject = media;
    pc.current = c;
    return c;
  };
  const hangUp = (tell = true) => {
    pc.current?.getSenders().forEach((s) => s.track?.stop());
    pc.current?.close();
    pc.current = null;
    pending.current = [];
    if (tell) signal('hangup', {});
    setState('idle');
  };

  useEffect(() => {
    if (!live) return;
    const off = live.on('rtc', async (m) => {
      if (m.consult !== consult) return;
      const data = m.data as RTCSessionDescriptionInit & RTCIceCandidateInit;
      // A candidate that cannot be added is one path fewer, not the end of the call.
      const add = (c: RTCPeerConnection, x: RTCIceCandidateInit) =>
        c.addIceCandidate(x).catch(() => {});
      const described = async (c: RTCPeerConnection) => {
        await c.setRemoteDescription(data);
        const queued = pending.current;
        pending.current = [];
        await Promise.all(queued.map((x) => add(c, x)));
      };
      try {
        if (m.signal === 'offer') {
          const c = pc.current ?? (await connection());
          await described(c);
          const answer = await c.createAnswer();
          await c.setLocalDescription(answer);
          signal('answer', answer);
          // The caller's tracks may have arrived already (with its offer).
          setState((s) => (s === 'in_call' ? s : 'calling'));
        } else if (m.signal === 'answer') {
          if (pc.current) await described(pc.current);
        } else if (m.signal === 'ice') {
          if (pc.current?.remoteDescription) await add(pc.current, data);
          else if (pending.current.length < 100) pending.current.push(data);
        } else if (m.signal === 'hangup') {
          hangUp(false);
        }
      } catch {
        hangUp();
      }
    });
    return () => {
      off();
      if (pc.current) hangUp();
    };
  }, [live, consult, peer]);

  const call = async () => {
    try {
      const c = await connection();
      const offer = await c.createOffer();
      await c.setLocalDescription(offer);
      signal('offer', offer);
      setState('calling');
    } catch {
      hangUp();
    }
  };
  return (
    <span class="call">
      {state === 'idle' ? (
        <button type="button" onClick={call}>
          {t('videoCall')} {peer}
        </button>
      ) : (
        <button type="button" onClick={() => hangUp()}>
          {t('hangUp')}
        </button>
      )}
      <video ref={local} autoplay muted playsInline class={state === 'idle' ? 'hidden' : 'local'} />
      <video ref={remote} autoplay playsInline class={state === 'in_call' ? 'remote' : 'hidden'} />
    </span>
  );
}
