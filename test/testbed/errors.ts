// Error codes of the test bed harness, so a failing bed says which part broke and why (never matched on text).

export const TestbedErrorCode = {
  /** Debian packages the bed needs are missing and cannot be installed from here (not root). */
  PACKAGES_MISSING: 'TESTBED_PACKAGES_MISSING',
  /** `apt-get` ran but failed. */
  PACKAGE_INSTALL_FAILED: 'TESTBED_PACKAGE_INSTALL_FAILED',
  /** A server of the bed did not start or did not answer on its port in time. */
  START_FAILED: 'TESTBED_START_FAILED',
  /** A server of the bed did not stop in time. */
  STOP_FAILED: 'TESTBED_STOP_FAILED',
  /** The provider's login page answered something the login driver does not understand. */
  LOGIN_FLOW_FAILED: 'TESTBED_LOGIN_FLOW_FAILED',
  /** The provider answered a token request with an error. */
  TOKEN_REQUEST_FAILED: 'TESTBED_TOKEN_REQUEST_FAILED',
  /** A harness function was called with options it cannot honour. */
  BAD_OPTION: 'TESTBED_BAD_OPTION',
} as const;

export type TestbedErrorCode = (typeof TestbedErrorCode)[keyof typeof TestbedErrorCode];

export class TestbedError extends Error {
  readonly code: TestbedErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: TestbedErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TestbedError';
    this.code = code;
    this.details = options.details ?? {};
  }
}
