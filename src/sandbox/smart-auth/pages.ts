/** Small server-rendered pages of the sandbox: the EHR frame that launches the app, the standalone
 * patient picker, and error pages. Everything user- or request-supplied is HTML-escaped. */

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

const STYLE = `
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #f4f5f7; }
  header { background: #23395d; color: #fff; padding: 8px 16px; display: flex; gap: 24px; align-items: baseline; }
  header h1 { font-size: 16px; margin: 0; }
  main { padding: 16px; }
  iframe { border: 1px solid #888; background: #fff; display: block; }
  form { background: #fff; padding: 16px; max-width: 520px; border: 1px solid #ccc; border-radius: 6px; }
  label { display: block; margin: 8px 0 4px; font-weight: 600; }
  select, input, button { font: inherit; padding: 6px 8px; }
  button { margin-top: 12px; background: #23395d; color: #fff; border: 0; border-radius: 4px; cursor: pointer; }
  button:focus-visible, select:focus-visible, input:focus-visible { outline: 3px solid #f5a623; outline-offset: 2px; }
  .error { background: #fff; border-left: 6px solid #b00020; padding: 12px 16px; max-width: 640px; }
`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><link rel="icon" href="data:,"><style>${STYLE}</style></head><body>${body}</body></html>`;
}

/** The sandbox EHR: a chart header and the app in a 1280x800 frame, as an EHR embeds a SMART app. */
export function ehrFramePage(opts: { patient: string; fhirContext?: string; appUrl: string }): string {
  return page(
    'vbmd sandbox EHR',
    `<header><h1>Sandbox EHR</h1><span>Patient ${escapeHtml(opts.patient)}</span>${
      opts.fhirContext ? `<span>Context ${escapeHtml(opts.fhirContext)}</span>` : ''
    }</header>
<main><iframe title="vbmd bone density app" src="${escapeHtml(opts.appUrl)}" width="1280" height="800"></iframe></main>`,
  );
}

/** The sandbox EHR's patient list: each entry opens the chart with the app launched (EHR launch). */
export function patientIndexPage(patients: { id: string; label: string }[]): string {
  const items = patients
    .map((p) => `<li><a href="/sandbox/launch?patient=${encodeURIComponent(p.id)}">${escapeHtml(p.label)}</a></li>`)
    .join('');
  return page(
    'vbmd sandbox EHR',
    `<header><h1>Sandbox EHR</h1></header><main><h2>Open a chart</h2>
<p>Each link opens the patient's chart with the bone-density app launched the way an EHR does (SMART EHR launch).</p>
${items ? `<ul>${items}</ul>` : '<p>No patients in the sandbox. Add <code>?patient=ID</code> to this address.</p>'}</main>`,
  );
}

export function patientPickerPage(opts: {
  action: string;
  patients: { id: string; label: string }[];
  clientId: string;
}): string {
  const options = opts.patients
    .map((p) => `<option value="${escapeHtml(p.id)}">${escapeHtml(p.label)}</option>`)
    .join('');
  const field = opts.patients.length
    ? `<label for="patient">Patient</label><select id="patient" name="patient" required>${options}</select>`
    : `<label for="patient">Patient id</label><input id="patient" name="patient" required autocomplete="off">`;
  return page(
    'Choose a patient',
    `<header><h1>Sandbox sign-in</h1></header><main>
<form method="post" action="${escapeHtml(opts.action)}">
<p>The app <strong>${escapeHtml(opts.clientId)}</strong> asks to read this patient's bone-density results
(Observation, RiskAssessment, Patient, ImagingStudy), signed in as the sandbox clinician.</p>
${field}
<button type="submit">Allow and open</button>
</form></main>`,
  );
}

export function errorPage(title: string, message: string): string {
  return page(title, `<header><h1>Sandbox EHR</h1></header><main><div class="error" role="alert"><h2>${escapeHtml(title)}</h2><p>${escapeHtml(message)}</p></div></main>`);
}
