// Example Outrider destination in JavaScript: POSTs each event as a JSON envelope
// (`{id, topic, time, data}`) to a URL, with an optional bearer token.
//
// Built into a WebAssembly component by componentize-js (`jco componentize`), against the
// `destination-plugin` world of `outrider:plugin@0.1.0`. How WIT maps to JavaScript:
// interfaces are exported objects (`plugin`, `destination`); records are objects with
// camelCase keys; enums are strings; `option<T>` is a value or `undefined`; `u64` is a
// BigInt; `list<u8>` is a Uint8Array; a `result` is returned when ok and *thrown* when an
// error (imports returning a `result` throw their error, with the value in `.payload`).

import { send } from 'outrider:plugin/http@0.1.0';
import { log } from 'outrider:plugin/log@0.1.0';

const PROTOTYPE = 'js_webhook';

function field(key, label, description, extra = {}) {
  return {
    key,
    type: 'text',
    label,
    description,
    required: false,
    sensitive: false,
    default: undefined,
    minLength: undefined,
    maxLength: undefined,
    pattern: undefined,
    options: [],
    generate: undefined,
    ...extra,
  };
}

export const plugin = {
  manifest() {
    return {
      name: 'js-destination',
      version: '0.1.0',
      description: 'Example: events as JSON envelopes to a URL, written in JavaScript.',
      prototypes: [
        {
          id: PROTOTYPE,
          kind: 'destination',
          label: 'JSON webhook (JavaScript example)',
          description: 'POST each event as {id, topic, time, data} to a URL.',
          icon: '',
          instructions: 'Paste the URL that should receive events. An optional token is sent as `Authorization: Bearer <token>`.',
          setupLink: undefined,
          configFields: [
            field('url', 'URL', 'Where events are POSTed (http or https).', { required: true }),
          ],
          credentialFields: [
            field('token', 'Token', 'Sent as a bearer token, if set.', { sensitive: true }),
          ],
          // The plugin may reach the host named in `config.url`, nothing else.
          network: { hosts: [], urlFields: ['url'], tcp: false },
        },
      ],
    };
  },

  selfTests() {
    return [
      {
        name: 'accepts an https URL',
        prototype: PROTOTYPE,
        config: JSON.stringify({ url: 'https://example.com/hook' }),
        credentials: '{}',
        input: undefined,
        expected: undefined,
        expectError: false,
      },
      {
        name: 'refuses a URL that is not http(s)',
        prototype: PROTOTYPE,
        config: JSON.stringify({ url: 'ftp://example.com' }),
        credentials: '{}',
        input: undefined,
        expected: undefined,
        expectError: true,
      },
    ];
  },
};

// Every problem with a configuration, each naming its field.
function problems(prototype, config) {
  const errors = [];
  if (prototype !== PROTOTYPE) {
    errors.push({ field: 'prototype', message: `\`${prototype}\` is not a destination prototype of this plugin` });
  }
  const url = config.url;
  if (typeof url !== 'string' || url === '') {
    errors.push({ field: 'config.url', message: 'config.url is required' });
  } else if (!/^https?:\/\//.test(url)) {
    errors.push({ field: 'config.url', message: 'config.url must be an http:// or https:// URL' });
  }
  return errors;
}

function failure(message, statusCode, responseBody) {
  return { message, statusCode, responseBody };
}

export const destination = {
  validate(prototype, config, credentials) {
    const errors = problems(prototype, JSON.parse(config));
    if (errors.length > 0) {
      throw errors;
    }
  },

  deliver(target, event) {
    const config = JSON.parse(target.config);
    const credentials = JSON.parse(target.credentials);
    const errors = problems(target.prototype, config);
    if (errors.length > 0) {
      throw { tag: 'misconfigured', val: failure(errors.map((e) => e.message).join('; ')) };
    }
    const envelope = `{"id":${JSON.stringify(event.id)},"topic":${JSON.stringify(event.topic)},"time":${event.time},"data":${event.data}}`;
    const headers = [{ key: 'content-type', value: 'application/json' }];
    if (credentials.token) {
      headers.push({ key: 'authorization', value: `Bearer ${credentials.token}` });
    }
    let response;
    try {
      response = send({
        method: 'POST',
        url: config.url,
        headers,
        body: new TextEncoder().encode(envelope),
        timeoutMs: undefined,
        followRedirects: false,
      });
    } catch (e) {
      const error = e.payload ?? { tag: 'transport', val: String(e) };
      const message = `${error.tag}${error.val ? `: ${error.val}` : ''}`;
      // A denied address is the operator's or the configuration's business: retrying
      // will not help. Timeouts and transport failures are transient.
      throw error.tag === 'denied' || error.tag === 'invalid-request'
        ? { tag: 'misconfigured', val: failure(message) }
        : { tag: 'retry', val: { failure: failure(message), retryAfterMs: undefined } };
    }
    const body = new TextDecoder().decode(response.body).slice(0, 4096);
    if (response.status >= 200 && response.status < 300) {
      return { statusCode: response.status, responseBody: body };
    }
    log('warn', `receiver answered ${response.status}`, [{ key: 'event', value: event.id }]);
    const what = failure(`receiver answered HTTP ${response.status}`, response.status, body);
    if (response.status === 429 || response.status >= 500) {
      const retryAfter = response.headers.find((h) => h.key.toLowerCase() === 'retry-after');
      const seconds = retryAfter ? Number.parseInt(retryAfter.value, 10) : Number.NaN;
      const retryAfterMs = Number.isFinite(seconds) && seconds >= 0 ? BigInt(seconds) * 1000n : undefined;
      throw { tag: 'retry', val: { failure: what, retryAfterMs } };
    }
    throw { tag: 'fail', val: what };
  },
};
