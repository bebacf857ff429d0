// Who is signed in (GET /api/whoami: the token's name and role) and what
// that role may do. Views show only the actions the role has; the server
// refuses the others anyway (403 FORBIDDEN_ROLE).

const ROLES = ['viewer', 'operator', 'admin'];
let current = null;

export const session = {
  /** `{ name, role }`, or null when signed out. */
  set: (principal) => {
    current = principal;
  },
  get: () => current,
  /** Whether the signed-in token's role may do what `role` may (viewer < operator < admin). */
  can: (role) => current !== null && ROLES.indexOf(current.role) >= ROLES.indexOf(role),
};
