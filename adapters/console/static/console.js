// countersign console: live updates and in-place decisions. The server renders every card
// (and escapes everything in it); this script only fetches fresh copies of those fragments
// when the server says a proposal changed, and posts decisions without leaving the page.
// Without it the console still works: forms post and the page reloads.
'use strict';

(function () {
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.getAttribute('content') : null;
  const live = document.body.dataset.live || '';
  const timers = new Map();

  function parseFragment(text) {
    const template = document.createElement('template');
    template.innerHTML = text.trim();
    return template.content.firstElementChild;
  }

  function updateCount() {
    const count = document.getElementById('pending-count');
    const cards = document.querySelectorAll('#cards .card[data-status="pending"]').length;
    if (count) count.textContent = String(cards);
    const empty = document.getElementById('empty');
    if (empty) empty.hidden = document.querySelectorAll('#cards .card').length > 0;
  }

  async function refresh(id, notice) {
    const existing = document.getElementById('card-' + id);
    if (!existing && live !== 'pending') return;
    const res = await fetch('/console/proposals/' + encodeURIComponent(id) + '/card', { headers: { accept: 'text/html' }, credentials: 'same-origin' });
    if (res.status === 401) {
      window.location.assign('/console/login');
      return;
    }
    if (!res.ok) return;
    const fresh = parseFragment(await res.text());
    if (!fresh) return;
    const current = document.getElementById('card-' + id);
    if (current) {
      // Keep a reason someone is still typing.
      const oldText = current.querySelector('textarea[name="reason"]');
      const newText = fresh.querySelector('textarea[name="reason"]');
      if (oldText && newText && oldText.value !== '') newText.value = oldText.value;
      // And a card ticked for "Approve selected" stays ticked.
      const oldPick = current.querySelector('.pick input');
      const newPick = fresh.querySelector('.pick input');
      if (oldPick && newPick) newPick.checked = oldPick.checked;
      current.replaceWith(fresh);
    } else if (fresh.dataset.status === 'pending') {
      const cards = document.getElementById('cards');
      if (cards) cards.prepend(fresh);
    }
    if (notice) showNotice(fresh, notice.text, notice.ok);
    tick();
    updateCount();
  }

  function scheduleRefresh(id) {
    clearTimeout(timers.get(id));
    timers.set(id, setTimeout(() => void refresh(id), 120));
  }

  function showNotice(card, text, ok) {
    const notice = card.querySelector('.notice') || card.querySelector('footer');
    if (!notice) return;
    let target = notice;
    if (!notice.classList.contains('notice')) {
      target = document.createElement('p');
      target.className = 'notice';
      notice.append(target);
    }
    target.textContent = text;
    target.classList.toggle('ok', ok);
    target.classList.toggle('err', !ok);
  }

  // A critical approval: the server answered with what to confirm (and recorded nothing).
  // Its facts go in as text, never as markup; the same vote is posted again with confirm=yes.
  function askToConfirm(form, body, c) {
    const buttons = form.querySelector('.buttons');
    const box = document.createElement('div');
    box.className = 'confirm-approval';
    box.setAttribute('role', 'group');
    const question = document.createElement('p');
    question.className = 'question';
    question.textContent = c.question;
    const facts = document.createElement('dl');
    facts.className = 'facts';
    for (const [label, value] of [['Action', c.action], ['Target', c.target], ['Value', c.value]]) {
      const row = document.createElement('div');
      const dt = document.createElement('dt');
      dt.textContent = label;
      const dd = document.createElement('dd');
      dd.textContent = value;
      row.append(dt, dd);
      facts.append(row);
    }
    const yes = document.createElement('button');
    yes.type = 'button';
    yes.className = 'approve confirm-yes';
    yes.textContent = c.confirm;
    const back = document.createElement('button');
    back.type = 'button';
    back.className = 'confirm-back';
    back.textContent = c.back;
    const row = document.createElement('div');
    row.className = 'buttons';
    row.append(yes, back);
    box.append(question, facts, row);
    // Approve and Deny step aside while the question is open, and come back with Go back.
    const place = document.createComment('buttons');
    if (buttons) buttons.replaceWith(place);
    form.append(box);
    const close = () => {
      box.remove();
      if (buttons) place.replaceWith(buttons);
    };
    back.addEventListener('click', close);
    yes.addEventListener('click', () => {
      body.set('confirm', 'yes');
      close();
      void post(form, body);
    });
    yes.focus();
  }

  async function post(form, body) {
    const card = form.closest('.card');
    // The same buttons come back: the confirm step may have set Approve and Deny aside meanwhile.
    const busy = Array.from(form.querySelectorAll('button'));
    for (const b of busy) b.disabled = true;
    try {
      const res = await fetch(form.action, { method: 'POST', body, credentials: 'same-origin', headers: { accept: 'application/json', 'x-csrf-token': csrf } });
      const answer = await res.json().catch(() => ({ ok: false, message: 'Unexpected answer (HTTP ' + res.status + ')' }));
      if (res.status === 401) {
        window.location.assign('/console/login');
        return;
      }
      if (answer.ok && card) {
        await refresh(card.dataset.id, { text: answer.message, ok: true });
        return;
      }
      if (answer.why === 'confirmation_required' && answer.confirmation) {
        askToConfirm(form, body, answer.confirmation);
        return;
      }
      // A stale sign-in: the card, fetched again, offers "Sign in again" in place of Approve.
      if (answer.why === 'step_up_required' && card) {
        await refresh(card.dataset.id, { text: answer.message, ok: false });
        return;
      }
      if (card) showNotice(card, answer.message || 'Refused', false);
    } catch (e) {
      if (card) showNotice(card, 'Could not reach countersign: ' + e.message, false);
    } finally {
      for (const b of busy) b.disabled = false;
    }
  }

  document.addEventListener('submit', (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains('decide') || !csrf) return;
    event.preventDefault();
    if (form.querySelector('.confirm-approval')) return;
    const body = new URLSearchParams(new FormData(form));
    const submitter = event.submitter;
    if (submitter && submitter.name) body.set(submitter.name, submitter.value);
    void post(form, body);
  });

  function tick() {
    const now = Date.now();
    for (const el of document.querySelectorAll('.countdown[data-until]')) {
      const left = Date.parse(el.dataset.until) - now;
      if (Number.isNaN(left)) continue;
      if (left <= 0) el.textContent = '(due now)';
      else if (left < 120000) el.textContent = '(in ' + Math.ceil(left / 1000) + ' s)';
      else if (left < 7200000) el.textContent = '(in ' + Math.round(left / 60000) + ' min)';
      else el.textContent = '(in ' + Math.round(left / 3600000) + ' h)';
    }
  }
  tick();
  setInterval(tick, 5000);

  // After the stream was down, changes may have been missed: fetch every card again (and,
  // on the pending page, any card that appeared meanwhile).
  async function resync() {
    const ids = new Set(Array.from(document.querySelectorAll('.card'), (c) => c.dataset.id));
    if (live === 'pending') {
      const res = await fetch('/console', { headers: { accept: 'text/html' }, credentials: 'same-origin' });
      if (res.ok) {
        const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
        for (const card of doc.querySelectorAll('#cards .card')) ids.add(card.dataset.id);
      }
    }
    for (const id of ids) if (id) scheduleRefresh(id);
    scheduleNotices();
  }

  // An over-the-limit notice posted or updated: the banner, rendered (and escaped) by the server, again.
  let noticesTimer = null;
  async function refreshNotices() {
    const current = document.getElementById('limit-notices');
    if (!current) return;
    const res = await fetch('/console/notices', { headers: { accept: 'text/html' }, credentials: 'same-origin' });
    if (!res.ok) return;
    const fresh = parseFragment(await res.text());
    const now = document.getElementById('limit-notices');
    if (fresh && now) now.replaceWith(fresh);
  }
  function scheduleNotices() {
    clearTimeout(noticesTimer);
    noticesTimer = setTimeout(() => void refreshNotices(), 120);
  }

  if (live !== '' && 'EventSource' in window) {
    const source = new EventSource('/console/events');
    source.addEventListener('notice', () => scheduleNotices());
    source.addEventListener('proposal', (event) => {
      try {
        const notice = JSON.parse(event.data);
        if (typeof notice.id === 'string') scheduleRefresh(notice.id);
      } catch (e) {
        /* ignore a malformed event */
      }
    });
    let lost = false;
    source.addEventListener('open', () => {
      document.body.classList.add('live');
      if (lost) void resync();
      lost = false;
    });
    source.addEventListener('error', () => {
      document.body.classList.remove('live');
      lost = true;
    });
  }
})();
