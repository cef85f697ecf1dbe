// telecardio pages: the few things that must happen in the browser. Server-rendered pages do
// the rest; every request goes to the same API as any other client, with the session's
// anti-forgery token in X-CSRF-Token.
'use strict';
(function () {
  const wordsElement = document.getElementById('words');
  const words = wordsElement ? JSON.parse(wordsElement.textContent) : {};
  const t = (key) => words[key] || key;
  const tokenElement = document.querySelector('meta[name="csrf-token"]');
  const csrf = tokenElement ? tokenElement.content : '';
  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));

  // The detail of a problem answer (RFC 9457), else the status line.
  async function failure(response) {
    try {
      const body = await response.json();
      if (body && body.detail) return body.detail;
    } catch (_) { /* not JSON */ }
    return t('js.failed') + ' (' + response.status + ')';
  }

  async function call(method, url, body) {
    const init = { method, credentials: 'same-origin', headers: { 'X-CSRF-Token': csrf } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(url, init);
  }

  function say(element, text, bad) {
    if (!element) return;
    element.textContent = text;
    element.classList.toggle('error', Boolean(bad));
  }

  // --- lists: filter rows by any text in them (names stay in the page, never in a URL) ---
  for (const input of $$('[data-filter]')) {
    const table = document.getElementById(input.dataset.filter);
    const status = $('[data-filter-status="' + input.dataset.filter + '"]');
    const apply = () => {
      const needle = input.value.trim().toLocaleLowerCase('lt');
      const wanted = status ? status.value : '';
      for (const row of $$('tbody tr', table || document)) {
        const text = row.textContent.toLocaleLowerCase('lt');
        const shown = (!needle || text.includes(needle)) && (!wanted || row.dataset.status === wanted);
        row.hidden = !shown;
      }
    };
    input.addEventListener('input', apply);
    if (status) status.addEventListener('change', apply);
  }

  // --- claims ---
  for (const button of $$('[data-claim], [data-release]')) {
    button.addEventListener('click', async () => {
      const claiming = button.hasAttribute('data-claim');
      const id = claiming ? button.dataset.claim : button.dataset.release;
      button.disabled = true;
      const response = await call('POST', '/api/cases/' + encodeURIComponent(id) + (claiming ? '/claim' : '/release'));
      if (response.ok) {
        location.reload();
      } else {
        say($('#action-result'), await failure(response), true);
        button.disabled = false;
      }
    });
  }

  // --- administrators' actions: POST the row's fields (plus fixed ones) as JSON ---
  for (const button of $$('[data-post]')) {
    button.addEventListener('click', async () => {
      const row = button.closest('tr');
      const body = JSON.parse(button.dataset.json || '{}');
      const scope = button.closest('.inline-action') || row;
      for (const field of $$('input[name], select[name]', scope)) {
        if (field.value !== '' || field.name !== 'password') body[field.name] = field.value;
      }
      if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
      if (body.reason !== undefined && !body.reason.trim()) {
        say($('#action-result'), t('js.reason_needed'), true);
        $('input[name=reason]', row).focus();
        return;
      }
      button.disabled = true;
      const response = await call('POST', button.dataset.post, body);
      if (response.ok && button.dataset.show) {
        // Shown once, here: nothing keeps it.
        const answer = await response.json();
        say($('#action-result'), t('js.shown_once') + ' ' + answer[button.dataset.show]);
        button.disabled = false;
      } else if (response.ok) {
        say($('#action-result'), t('js.done'));
        location.reload();
      } else {
        say($('#action-result'), await failure(response), true);
        button.disabled = false;
      }
    });
  }

  // --- sending a referral ---
  const referralForm = $('#referral-form');
  if (referralForm) {
    referralForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      const file = $('#referral-file').files[0];
      const result = $('#referral-result');
      if (!file) return;
      if (file.size > Number(referralForm.dataset.max)) {
        say(result, t('js.too_large'), true);
        return;
      }
      say(result, t('js.sending'));
      const response = await fetch('/api/referrals', {
        method: 'POST', credentials: 'same-origin',
        headers: { 'X-CSRF-Token': csrf, 'Content-Type': 'application/xml' }, body: file,
      });
      if (response.ok) {
        const body = await response.json();
        say(result, (response.status === 201 ? t('js.referral_received') : t('js.referral_known')) +
          ' ' + t('js.order') + ' ' + body.order_number);
      } else {
        say(result, await failure(response), true);
      }
    });
  }

  // --- sending a study: one STOW-RS request per file, two at a time, with progress ---
  const studyForm = $('#study-form');
  if (studyForm) {
    studyForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const files = [...$('#study-files').files, ...$('#study-folder').files]
        .filter((f) => f.name !== 'DICOMDIR');
      if (files.length) sendStudy(files);
    });
  }

  function sendStudy(files) {
    const list = $('#study-list');
    const body = $('tbody', list);
    body.textContent = '';
    list.hidden = false;
    $('#study-total').hidden = false;
    const total = files.reduce((sum, f) => sum + f.size, 0) || 1;
    const loaded = new Array(files.length).fill(0);
    let done = 0;
    let refused = 0;
    const rows = files.map((file) => {
      const row = document.createElement('tr');
      const name = document.createElement('td');
      name.textContent = file.webkitRelativePath || file.name;
      const bar = document.createElement('progress');
      bar.max = file.size || 1;
      bar.value = 0;
      bar.setAttribute('aria-label', name.textContent);
      const barCell = document.createElement('td');
      barCell.append(bar);
      const result = document.createElement('td');
      row.append(name, barCell, result);
      body.append(row);
      return { bar, result };
    });
    const update = () => {
      $('#total-bar').value = loaded.reduce((a, b) => a + b, 0) / total;
      say($('#total-text'), done + ' / ' + files.length + (refused ? ' · ' + t('js.refused_count') + ' ' + refused : ''), refused > 0);
    };
    let next = 0;
    const worker = () => {
      if (next >= files.length) return Promise.resolve();
      const i = next++;
      return sendOne(files[i], rows[i], (n) => { loaded[i] = n; update(); }).then((ok) => {
        done += 1;
        if (!ok) refused += 1;
        loaded[i] = files[i].size;
        update();
        return worker();
      });
    };
    update();
    Promise.all([worker(), worker()]).then(() => {
      say($('#total-text'), (refused ? t('js.study_partly') : t('js.study_sent')) + ' ' + (done - refused) + ' / ' + files.length, refused > 0);
    });
  }

  function sendOne(file, row, progress) {
    return new Promise((resolve) => {
      const boundary = 'telecardio-' + Math.random().toString(16).slice(2);
      const head = '--' + boundary + '\r\nContent-Type: application/dicom\r\n\r\n';
      const tail = '\r\n--' + boundary + '--\r\n';
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/dicom-web/studies');
      xhr.setRequestHeader('Content-Type', 'multipart/related; type="application/dicom"; boundary=' + boundary);
      xhr.setRequestHeader('Accept', 'application/dicom+json');
      xhr.setRequestHeader('X-CSRF-Token', csrf);
      xhr.upload.onprogress = (e) => { row.bar.value = Math.min(e.loaded, file.size); progress(Math.min(e.loaded, file.size)); };
      xhr.onload = () => {
        row.bar.value = row.bar.max;
        if (xhr.status === 200) {
          say(row.result, t('js.stored'));
          resolve(true);
          return;
        }
        let why = xhr.getResponseHeader('Warning') || '';
        const quoted = why.match(/"([^"]*)"\s*$/);
        if (quoted) why = quoted[1];
        why = why.replace(/^[:\s]+/, '');
        if (!why) {
          try { why = JSON.parse(xhr.responseText).detail || ''; } catch (_) { /* not JSON */ }
        }
        say(row.result, t('js.refused') + (why ? ': ' + why : ' (' + xhr.status + ')'), true);
        resolve(false);
      };
      xhr.onerror = () => { say(row.result, t('js.network'), true); resolve(false); };
      xhr.send(new Blob([head, file, tail]));
    });
  }

  // --- the case page: the study's series with a picture of each ---
  const seriesList = $('#series');
  if (seriesList) showSeries(seriesList);

  // What OHIF's image loader (cornerstone) decodes. Anything else, and video (which it would
  // fetch as rendered MP4, which we do not serve), would be an empty viewport: said instead.
  const DECODED = new Set([
    '1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.1.99', '1.2.840.10008.1.2.2',
    '1.2.840.10008.1.2.5', '1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.57',
    '1.2.840.10008.1.2.4.70', '1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.81', '1.2.840.10008.1.2.4.90',
    '1.2.840.10008.1.2.4.91', '1.2.840.10008.1.2.4.201', '1.2.840.10008.1.2.4.202', '1.2.840.10008.1.2.4.203',
  ]);
  const viewerCannot = (sopClass, syntax) => {
    if (sopClass.startsWith('1.2.840.10008.5.1.4.1.1.104.')) return t('js.viewer_document');
    if (/^1\.2\.840\.10008\.1\.2\.4\.10[0-8]$/.test(syntax)) return t('js.viewer_video');
    if (syntax && !DECODED.has(syntax)) return t('js.viewer_syntax') + ' ' + syntax;
    return null;
  };

  async function showSeries(list) {
    const study = list.dataset.study;
    const base = '/dicom-web/studies/' + encodeURIComponent(study);
    const value = (dataset, tag) => {
      const element = dataset[tag];
      return element && element.Value && element.Value.length ? element.Value[0] : '';
    };
    const response = await fetch(base + '/series', { headers: { Accept: 'application/dicom+json' }, credentials: 'same-origin' });
    list.textContent = '';
    if (response.status === 204 || !response.ok) {
      const item = document.createElement('li');
      item.textContent = t('js.no_series');
      list.append(item);
      return;
    }
    for (const series of await response.json()) {
      const uid = value(series, '0020000E');
      const modality = value(series, '00080060');
      const item = document.createElement('li');
      const caption = document.createElement('span');
      caption.textContent = [modality, value(series, '0008103E'), value(series, '00201209') + ' ' + t('js.objects')]
        .filter(Boolean).join(' · ');
      item.append(caption);
      list.append(item);
      const instances = await fetch(base + '/series/' + encodeURIComponent(uid) + '/instances?limit=1',
        { headers: { Accept: 'application/dicom+json' }, credentials: 'same-origin' });
      if (!instances.ok || instances.status === 204) continue;
      const first = (await instances.json())[0];
      if (!first) continue;
      const sopClass = value(first, '00080016');
      if (modality === 'ECG' || modality === 'HD' || sopClass.startsWith('1.2.840.10008.5.1.4.1.1.9.')) {
        const link = document.createElement('a');
        link.className = 'button';
        link.textContent = t('js.wave_open');
        link.href = '/waveform/' + [study, uid, value(first, '00080018')].map(encodeURIComponent).join('/');
        item.append(link);
        continue;
      }
      const cannot = viewerCannot(sopClass, value(first, '00083002'));
      if (cannot) {
        const note = document.createElement('p');
        note.className = 'viewer-note';
        note.textContent = cannot;
        item.append(note);
        const summary = $('#viewer-note');
        if (summary) { summary.textContent = t('js.viewer_some'); summary.hidden = false; }
        if (sopClass === '1.2.840.10008.5.1.4.1.1.104.1') {
          const link = document.createElement('a');
          link.className = 'button';
          link.textContent = t('js.open_document');
          link.href = base + '/series/' + encodeURIComponent(uid) + '/instances/' +
            encodeURIComponent(value(first, '00080018')) + '/rendered';
          link.download = 'document.pdf';
          item.append(link);
        }
        continue;
      }
      const image = document.createElement('img');
      image.alt = t('js.thumbnail') + ' ' + (modality || '');
      image.loading = 'lazy';
      // A compression our renderer lacks (JPEG-LS, JPEG 2000): words, not a broken picture.
      image.addEventListener('error', () => {
        const note = document.createElement('span');
        note.className = 'no-picture';
        note.textContent = t('js.no_thumbnail');
        image.replaceWith(note);
      });
      image.src = base + '/series/' + encodeURIComponent(uid) + '/instances/' +
        encodeURIComponent(value(first, '00080018')) + '/frames/1/rendered';
      item.prepend(image);
    }
  }

  // --- the report editor: drafts saved as one types, signing after an explicit confirmation ---
  const reportForm = $('#report-form');
  if (reportForm) editor(reportForm);

  function editor(form) {
    const url = '/api/cases/' + encodeURIComponent(form.dataset.case) + '/report';
    const state = $('#save-state');
    let timer = null;
    let saved = true;
    const text = () => {
      const field = (name) => { const e = form.elements[name]; return e ? e.value : ''; };
      return {
        findings: field('findings'), conclusion: field('conclusion'),
        recommendations: field('recommendations'), amendment_reason: field('amendment_reason'),
        non_diagnostic: Boolean(form.elements.non_diagnostic && form.elements.non_diagnostic.checked),
      };
    };
    const save = async () => {
      clearTimeout(timer);
      say(state, t('js.saving'));
      const response = await call('PUT', url, text());
      if (response.ok) {
        saved = true;
        say(state, t('js.saved') + ' ' + new Date().toLocaleTimeString(document.documentElement.lang, { timeZone: 'Europe/Vilnius', hour: '2-digit', minute: '2-digit' }));
        return true;
      }
      say(state, await failure(response), true);
      return false;
    };
    form.addEventListener('input', () => {
      saved = false;
      clearTimeout(timer);
      timer = setTimeout(save, 1500);
    });
    $('#save').addEventListener('click', save);
    const dialog = $('#sign-dialog');
    $('#sign').addEventListener('click', async () => {
      if (!saved && !(await save())) return;
      say($('#sign-error'), '');
      dialog.showModal();
      $('#sign-no').focus();
    });
    $('#sign-no').addEventListener('click', () => dialog.close());
    $('#sign-yes').addEventListener('click', async () => {
      const response = await call('POST', url + '/sign');
      if (response.ok) {
        location.reload();
      } else {
        say($('#sign-error'), await failure(response), true);
      }
    });
    window.addEventListener('beforeunload', (event) => { if (!saved) event.preventDefault(); });
  }

  // --- the waveform viewer: 12-lead ECG on paper, Holter with an overview ---
  const wave = $('#waveform');
  if (wave) waveformViewer(wave);

  function waveformViewer(root) {
    const url = root.dataset.url;
    const info = $('#wave-info');
    const strip = $('#wave-strip');
    const overview = $('#wave-overview');
    const MM = 4; // canvas pixels per millimetre
    const gains = {};
    const toMillivolts = (unit) => ({ uV: 0.001, mV: 1, V: 1000 }[unit] || 0.001);
    const name = (label) => label.replace(/^lead\s+/i, '').split(/[,(]/)[0].trim();
    const fetchWindow = async (query) => {
      const response = await fetch(url + query, { credentials: 'same-origin' });
      if (!response.ok) throw new Error(await failure(response));
      return response.json();
    };
    const grid = (ctx, width, height) => {
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, width, height);
      for (let x = 0, i = 0; x <= width; x += MM, i++) {
        ctx.strokeStyle = i % 5 ? '#f7d4d4' : '#e79a9a';
        ctx.beginPath(); ctx.moveTo(x + 0.5, 0); ctx.lineTo(x + 0.5, height); ctx.stroke();
      }
      for (let y = 0, i = 0; y <= height; y += MM, i++) {
        ctx.strokeStyle = i % 5 ? '#f7d4d4' : '#e79a9a';
        ctx.beginPath(); ctx.moveTo(0, y + 0.5); ctx.lineTo(width, y + 0.5); ctx.stroke();
      }
    };
    // One trace: values (mV) from sample `from` for `count` samples, at 25 mm/s from x.
    const trace = (ctx, values, frequency, from, count, x0, y0, gain) => {
      ctx.strokeStyle = '#111';
      ctx.lineWidth = 1.2;
      ctx.beginPath();
      for (let i = 0; i < count && from + i < values.length; i++) {
        const x = x0 + (i / frequency) * 25 * MM;
        const y = y0 - values[from + i] * gain * MM;
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      }
      ctx.stroke();
    };
    const gainControls = (labels, redraw) => {
      const box = $('#wave-gains');
      for (const label of labels) {
        gains[label] = gains[label] || 10;
        const id = 'gain-' + label.replace(/[^A-Za-z0-9]/g, '_');
        const span = document.createElement('span');
        const tag = document.createElement('label');
        tag.htmlFor = id;
        tag.textContent = label;
        const select = document.createElement('select');
        select.id = id;
        for (const g of [2.5, 5, 10, 20, 40]) {
          const option = document.createElement('option');
          option.value = g;
          option.textContent = g;
          option.selected = g === gains[label];
          select.append(option);
        }
        select.addEventListener('change', () => { gains[label] = Number(select.value); redraw(); });
        span.append(tag, select);
        box.append(span);
      }
    };

    const clock = (s) => new Date(s * 1000).toISOString().slice(11, 19);
    const fine = (s) => s.toFixed(3) + ' s';
    const timed = (list) => list.filter((a) => a.start !== null);
    // Every annotation as a line of text (when, if it has a time; what), for reading and for
    // screen readers, since the marks on a canvas are only pictures.
    const notes = (list, total, when) => {
      const box = $('#wave-notes');
      const ul = box.querySelector('ul');
      ul.textContent = '';
      for (const a of list) {
        const li = document.createElement('li');
        const at = a.start === null ? '' : when(a.start) + (a.end > a.start ? '–' + when(a.end) : '') + ' ';
        li.textContent = at + a.label;
        ul.append(li);
      }
      box.querySelector('.count').textContent = list.length < total ? list.length + ' / ' + total : String(total);
      box.hidden = total === 0;
    };
    const inView = (list) => (list.length
      ? t('js.wave_annotations') + ': ' + list.map((a) => a.label).join('; ')
      : t('js.wave_no_annotations'));
    // An annotation on a canvas: a line at its start, a band over a segment, and its label.
    const mark = (ctx, a, x0, perSecond, height, label) => {
      const x = x0 + a.start * perSecond;
      if (a.end > a.start) {
        ctx.fillStyle = 'rgba(200, 30, 30, 0.15)';
        ctx.fillRect(x, 0, Math.max(2, (a.end - a.start) * perSecond), height);
      }
      ctx.fillStyle = '#c81e1e';
      ctx.fillRect(x, 0, 2, height);
      if (label) {
        ctx.font = '13px sans-serif';
        ctx.fillText(a.label, x + 4, height - 6);
      }
    };

    async function twelveLead(meta) {
      const g = meta.groups[0];
      const seconds = Math.min(10, g.seconds);
      const data = await fetchWindow('?seconds=' + seconds + '&points=20000');
      const factor = g.channels.map((c) => toMillivolts(c.unit));
      const mv = data.values.map((list, c) => list.map((v) => v * factor[c]));
      const index = {};
      g.channels.forEach((c, i) => { index[name(c.label).toLowerCase()] = i; });
      const layout = [['I', 'aVR', 'V1', 'V4'], ['II', 'aVL', 'V2', 'V5'], ['III', 'aVF', 'V3', 'V6']];
      const labels = g.channels.map((c) => name(c.label));
      const width = Math.round(seconds * 25 * MM);
      const rowHeight = 30 * MM;
      strip.width = width;
      strip.height = rowHeight * 4;
      const draw = () => {
        const ctx = strip.getContext('2d');
        grid(ctx, strip.width, strip.height);
        const column = Math.round(g.frequency * seconds / 4);
        layout.forEach((row, r) => row.forEach((lead, k) => {
          const c = index[lead.toLowerCase()];
          const i = c === undefined ? r + 3 * k : c;
          if (i >= mv.length) return;
          const y0 = rowHeight * r + rowHeight / 2;
          trace(ctx, mv[i], g.frequency, k * column, column, k * column / g.frequency * 25 * MM, y0, gains[labels[i]] || 10);
          ctx.fillStyle = '#000';
          ctx.font = '14px sans-serif';
          ctx.fillText(labels[i], k * width / 4 + 4, rowHeight * r + 16);
        }));
        const rhythm = index.ii === undefined ? 1 : index.ii;
        trace(ctx, mv[rhythm], g.frequency, 0, mv[rhythm].length, 0, rowHeight * 3.5, gains[labels[rhythm]] || 10);
        ctx.fillText(labels[rhythm], 4, rowHeight * 3 + 16);
        // Timed annotations (wave onsets and ends, events) as ticks under the rhythm strip.
        for (const a of timed(data.annotations)) {
          ctx.fillStyle = '#c81e1e';
          ctx.fillRect(a.start * 25 * MM, strip.height - 3 * MM, 2, 3 * MM);
        }
      };
      gainControls(labels, draw);
      draw();
      notes(data.annotations, data.annotations_total, fine);
      say(info, t('js.wave_twelve') + ' · ' + g.frequency + ' Hz · ' + seconds + ' s');
    }

    async function long(meta) {
      const g = meta.groups[0];
      const total = g.seconds;
      const labels = g.channels.map((c) => name(c.label));
      const factor = g.channels.map((c) => toMillivolts(c.unit));
      const band = 60;
      $('#wave-long').hidden = false;
      overview.hidden = false;
      overview.height = band * g.channels.length;
      const whole = await fetchWindow('?points=1000');
      const events = timed(whole.annotations);
      notes(whole.annotations, whole.annotations_total, clock);
      const octx = overview.getContext('2d');
      let start = 0;
      let span = Number($('#wave-span').value);
      const drawOverview = () => {
        octx.fillStyle = '#fff';
        octx.fillRect(0, 0, overview.width, overview.height);
        whole.values.forEach((list, c) => {
          const values = list.map((v) => v * factor[c]);
          const low = Math.min(...values); const high = Math.max(...values);
          const scale = (band - 10) / Math.max(high - low, 1e-6);
          octx.strokeStyle = '#1d3f6e';
          octx.beginPath();
          for (let i = 0; i + 1 < values.length; i += 2) {
            const x = (i / 2) * overview.width / (values.length / 2);
            octx.moveTo(x + 0.5, c * band + 5 + (high - values[i]) * scale);
            octx.lineTo(x + 0.5, c * band + 5 + (high - values[i + 1]) * scale);
          }
          octx.stroke();
          octx.fillStyle = '#000';
          octx.fillText(labels[c], 4, c * band + 14);
        });
        events.forEach((a) => mark(octx, a, 0, overview.width / total, overview.height, false));
        octx.fillStyle = 'rgba(11, 92, 173, 0.25)';
        octx.fillRect(start / total * overview.width, 0, Math.max(2, span / total * overview.width), overview.height);
      };
      const drawStrip = async () => {
        start = Math.max(0, Math.min(start, Math.max(0, total - span)));
        drawOverview();
        const raw = span <= 10;
        const data = await fetchWindow('?start=' + start + '&seconds=' + span + '&points=' + (raw ? 20000 : 1000));
        const rowHeight = 30 * MM;
        strip.width = 250 * MM;
        strip.height = rowHeight * g.channels.length;
        const ctx = strip.getContext('2d');
        if (raw) {
          grid(ctx, strip.width, strip.height);
        } else {
          ctx.fillStyle = '#fff';
          ctx.fillRect(0, 0, strip.width, strip.height);
        }
        data.values.forEach((list, c) => {
          const mv = list.map((v) => v * factor[c]);
          const y0 = rowHeight * c + rowHeight / 2;
          if (raw) {
            trace(ctx, mv, g.frequency, 0, mv.length, 0, y0, gains[labels[c]] || 10);
          } else {
            ctx.strokeStyle = '#111';
            ctx.beginPath();
            for (let i = 0; i + 1 < mv.length; i += 2) {
              const x = (i / 2) * strip.width / (mv.length / 2);
              ctx.moveTo(x + 0.5, y0 - mv[i] * (gains[labels[c]] || 10) * MM);
              ctx.lineTo(x + 0.5, y0 - mv[i + 1] * (gains[labels[c]] || 10) * MM);
            }
            ctx.stroke();
          }
          ctx.fillStyle = '#000';
          ctx.font = '14px sans-serif';
          ctx.fillText(labels[c], 4, rowHeight * c + 16);
        });
        const here = timed(data.annotations);
        here.forEach((a) => mark(ctx, a, -data.start * strip.width / span, strip.width / span, strip.height, true));
        say(info, t('js.wave_long') + ' · ' + clock(total) + ' · ' + g.channels.length + ' ' + t('js.wave_channels') +
          ' · ' + g.frequency + ' Hz · ' + clock(start) + '–' + clock(Math.min(total, start + span)) + ' · ' + inView(here));
      };
      overview.addEventListener('click', (e) => {
        const box = overview.getBoundingClientRect();
        start = (e.clientX - box.left) / box.width * total - span / 2;
        drawStrip();
      });
      overview.addEventListener('keydown', (e) => {
        if (e.key === 'ArrowRight') { start += span; drawStrip(); e.preventDefault(); }
        if (e.key === 'ArrowLeft') { start -= span; drawStrip(); e.preventDefault(); }
      });
      $('#wave-next').addEventListener('click', () => { start += span; drawStrip(); });
      $('#wave-back').addEventListener('click', () => { start -= span; drawStrip(); });
      $('#wave-span').addEventListener('change', () => { span = Number($('#wave-span').value); drawStrip(); });
      $('#wave-go').addEventListener('click', () => {
        const parts = $('#wave-jump').value.trim().split(':').map(Number);
        if (!parts.length || parts.some((p) => !Number.isFinite(p))) { say(info, t('js.wave_bad_time'), true); return; }
        start = parts.reduce((acc, p) => acc * 60 + p, 0);
        drawStrip();
      });
      if (events.length) {
        const select = $('#wave-events');
        events.forEach((a, i) => {
          const option = document.createElement('option');
          option.value = i;
          option.textContent = clock(a.start) + ' ' + a.label;
          select.append(option);
        });
        $('#wave-events-tools').hidden = false;
        // The event a fifth into the strip: what led to it is in view too.
        $('#wave-event-go').addEventListener('click', () => {
          start = events[Number(select.value)].start - span / 5;
          drawStrip();
        });
      }
      gainControls(labels, drawStrip);
      await drawStrip();
    }

    fetchWindow('?seconds=0.01&points=1')
      .then((meta) => {
        const g = meta.groups[0];
        return g.channels.length >= 12 && g.seconds <= 60 ? twelveLead(meta) : long(meta);
      })
      .catch((e) => say(info, t('js.wave_error') + ': ' + e.message, true));
  }
})();
