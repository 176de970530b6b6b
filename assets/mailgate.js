// Mailgate web UI: small progressive enhancements. Every page works without this script; it adds copy buttons,
// confirmations, focus on messages, and the live server test.
'use strict';

document.addEventListener('DOMContentLoaded', () => {
  // Move focus to an error summary or flash message so screen readers announce it and keyboard users start there.
  const autofocus = document.querySelector('[data-autofocus]');
  if (autofocus) autofocus.focus();

  // Copy buttons: data-copy names the input whose value is copied.
  for (const button of document.querySelectorAll('[data-copy]')) {
    button.addEventListener('click', async () => {
      const input = document.getElementById(button.getAttribute('data-copy'));
      const status = button.parentElement.querySelector('.copy-status');
      try {
        await navigator.clipboard.writeText(input.value);
      } catch {
        input.select();
        document.execCommand('copy');
      }
      if (status) {
        status.textContent = 'Copied';
        setTimeout(() => (status.textContent = ''), 2500);
      }
    });
  }

  // Forms that ask before acting (cancel a message, delete).
  for (const form of document.querySelectorAll('form[data-confirm]')) {
    form.addEventListener('submit', (event) => {
      if (!window.confirm(form.getAttribute('data-confirm'))) event.preventDefault();
    });
  }

  // Live server test: the form posts to /servers/:name/test, which streams one JSON line per step.
  for (const form of document.querySelectorAll('form[data-live-test]')) {
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      runLiveTest(form);
    });
  }
});

async function runLiveTest(form) {
  const output = document.getElementById(form.getAttribute('data-live-test'));
  const button = form.querySelector('button[type=submit]');
  output.hidden = false;
  output.innerHTML = '';
  const list = document.createElement('ol');
  list.className = 'steps';
  const summary = document.createElement('p');
  summary.className = 'test-summary';
  summary.setAttribute('role', 'status');
  summary.textContent = 'Testing…';
  output.append(summary, list);
  button.disabled = true;
  try {
    const response = await fetch(form.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/x-ndjson' },
      body: new URLSearchParams(new FormData(form)),
      credentials: 'same-origin',
    });
    if (!response.ok || !response.body) {
      summary.textContent = `The test could not start (HTTP ${response.status}). Reload the page and try again.`;
      summary.className = 'test-summary bad';
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) showEvent(JSON.parse(line), list, summary);
      }
    }
  } catch (err) {
    summary.textContent = `The test was interrupted: ${err.message}`;
    summary.className = 'test-summary bad';
  } finally {
    button.disabled = false;
  }
}

function showEvent(event, list, summary) {
  if (event.type === 'step') {
    const item = document.createElement('li');
    item.className = event.step.ok ? 'ok' : 'bad';
    const head = document.createElement('p');
    const mark = document.createElement('span');
    mark.className = 'mark';
    mark.setAttribute('aria-hidden', 'true');
    mark.textContent = event.step.ok ? '✓' : '✗';
    const name = document.createElement('strong');
    name.textContent = event.label || event.step.name;
    const words = document.createElement('span');
    words.className = 'visually-hidden';
    words.textContent = event.step.ok ? ' passed' : ' failed';
    const time = document.createElement('span');
    time.className = 'ms';
    time.textContent = `${event.step.ms} ms`;
    head.append(mark, name, words, ' ', time);
    const detail = document.createElement('p');
    detail.className = 'detail';
    detail.textContent = event.step.detail;
    item.append(head, detail);
    if (event.step.explanation) {
      const explain = document.createElement('div');
      explain.className = 'explanation';
      const meaning = document.createElement('p');
      meaning.textContent = event.step.explanation.meaning;
      const fix = document.createElement('p');
      const fixLabel = document.createElement('strong');
      fixLabel.textContent = 'Fix: ';
      fix.append(fixLabel, event.step.explanation.fix);
      explain.append(meaning, fix);
      item.append(explain);
    }
    list.append(item);
  } else if (event.type === 'done') {
    summary.textContent = event.report.ok ? `Works: every step passed in ${event.report.totalMs} ms.` : 'Does not work as configured: see the failed step below.';
    summary.className = `test-summary ${event.report.ok ? 'ok' : 'bad'}`;
  } else if (event.type === 'error') {
    summary.textContent = event.message;
    summary.className = 'test-summary bad';
  }
}
