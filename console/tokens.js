// Tokens (admin): the named tokens with their roles, a form that makes one
// and shows its secret this once, and revoke.

import { api } from './api.js';
import { badge, confirmDialog, failed, fill, h, time, toast } from './dom.js';

const ROLE_KIND = { viewer: 'neutral', operator: 'info', admin: 'warn' };

/** The secret of a token just made: shown here once, never again. */
function secretNote(made) {
  return h(
    'div',
    { class: 'card token-secret', role: 'status' },
    h('h2', {}, `Token ${made.name} (${made.role})`),
    h('p', {}, h('code', { id: 'new-token' }, made.token)),
    h('p', { class: 'muted' }, 'Copy it now: it will not be shown again (the server keeps only its hash).'),
  );
}

export async function tokensView(main) {
  const note = h('div', { 'aria-live': 'polite' });
  const body = h('div');
  const name = h('input', {
    id: 'token-name',
    name: 'name',
    required: true,
    pattern: '[a-z0-9][a-z0-9._\\-]{0,63}',
    placeholder: 'dashboard',
  });
  const role = h(
    'select',
    { id: 'token-role', name: 'role' },
    ['viewer', 'operator', 'admin'].map((r) => h('option', { value: r }, r)),
  );
  const error = h('p', { class: 'bad', role: 'alert' });
  const render = async () => {
    const tokens = await api('/tokens');
    fill(
      body,
      tokens.length === 0
        ? h('p', { class: 'muted' }, 'No named tokens yet; the admin token is the only one.')
        : h(
            'table',
            { class: 'tokens' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['Name', 'Role', 'Created', 'By', 'Last used', ''].map((c) => h('th', { scope: 'col' }, c)),
              ),
            ),
            h(
              'tbody',
              {},
              tokens.map((t) =>
                h(
                  'tr',
                  { dataset: { token: t.name } },
                  h('th', { scope: 'row' }, t.name),
                  h('td', {}, badge(t.role, ROLE_KIND[t.role] ?? 'neutral')),
                  h('td', {}, time(t.createdAt)),
                  h('td', {}, t.createdBy),
                  h('td', {}, t.lastUsedAt ? time(t.lastUsedAt) : 'never'),
                  h(
                    'td',
                    {},
                    h(
                      'button',
                      {
                        type: 'button',
                        class: 'danger',
                        onclick: async () => {
                          const ok = await confirmDialog(
                            `Revoke ${t.name}?`,
                            `Requests with the token ${t.name} are refused from now on.`,
                            'Revoke',
                          );
                          if (!ok) return;
                          try {
                            await api(`/tokens/${encodeURIComponent(t.name)}`, { method: 'DELETE' });
                            toast(`Revoked ${t.name}`);
                          } catch (err) {
                            failed(err);
                          }
                          await render().catch(failed);
                        },
                      },
                      'Revoke',
                    ),
                  ),
                ),
              ),
            ),
          ),
    );
  };
  fill(
    main,
    h('h1', {}, 'Tokens'),
    h(
      'p',
      { class: 'muted' },
      'Viewer reads; operator also enables, disables and reloads; admin also installs, uninstalls, trusts, edits namespaces and tokens.',
    ),
    h(
      'form',
      {
        class: 'card token-form',
        'aria-label': 'Make a token',
        onsubmit: async (e) => {
          e.preventDefault();
          error.textContent = '';
          try {
            const made = await api('/tokens', { method: 'POST', body: { name: name.value.trim(), role: role.value } });
            fill(note, secretNote(made));
            name.value = '';
            await render();
          } catch (err) {
            error.textContent = `${err.code}: ${err.message}`;
          }
        },
      },
      h('label', { for: 'token-name' }, 'Name'),
      name,
      h('label', { for: 'token-role' }, 'Role'),
      role,
      h('button', { type: 'submit' }, 'Make token'),
      error,
    ),
    note,
    body,
  );
  await render();
  return {};
}
