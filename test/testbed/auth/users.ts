// The people who can sign in at the test authorization server (its login page checks these passwords).

export interface TestUser {
  /** Stable subject identifier, as in ID tokens and introspection. */
  sub: string;
  email: string;
  password: string;
  name: string;
}

export const TEST_USERS = {
  alice: { sub: 'u-alice', email: 'alice@example.test', password: 'alice-pw', name: 'Alice Tester' },
  bob: { sub: 'u-bob', email: 'bob@example.test', password: 'bob-pw', name: 'Bob Tester' },
} as const satisfies Record<string, TestUser>;

const ALL_USERS: readonly TestUser[] = Object.values(TEST_USERS);

export function findUserBySub(sub: string): TestUser | undefined {
  return ALL_USERS.find((u) => u.sub === sub);
}

export function findUserByLogin(login: string): TestUser | undefined {
  return ALL_USERS.find((u) => u.email === login.trim().toLowerCase());
}
