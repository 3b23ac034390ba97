/**
 * Composition root of the accounts module: repositories, services (identity, sign-in, customers,
 * invitations, staff) and routes, built from the parts of the core they need.
 */
import { lazyRoutes, type Core, type HavreModule } from '../../core.ts';
import { publicBaseUrl } from '../../config/config.ts';
import type { AccountsDeps } from './accounts-deps.ts';
import { createAccountsRepo } from './accounts-repo.ts';
import { invalidating } from '../../http/auth-cache.ts';
import { createMemberDataService } from './member-data.ts';
import { createIdentityService } from './accounts-service.ts';
import { createCustomersRepo } from './customers-repo.ts';
import { createCustomersService } from './customers-service.ts';
import { createInvitationsService } from './invitations-service.ts';
import { createPasswordResetService } from './password-reset-service.ts';
import { createSignInService } from './sign-in-service.ts';
import { createStaffService, type OperatorInput } from './staff-service.ts';
import type { UserView } from './accounts-presenters.ts';

export interface AccountsServices {
  identity: ReturnType<typeof createIdentityService>;
  signIn: ReturnType<typeof createSignInService>;
  passwordResets: ReturnType<typeof createPasswordResetService>;
  customers: ReturnType<typeof createCustomersService>;
  invitations: ReturnType<typeof createInvitationsService>;
  staff: ReturnType<typeof createStaffService>;
  /** ACC-4, ACC-5: a member's export of their personal data, and account deletion. */
  memberData: ReturnType<typeof createMemberDataService>;
}

/** What other parts of Havre (the CLI, `havre start`) may call on the accounts module. */
export interface AccountsService {
  /** Creates an operator staff account with a random password (returned once). */
  createOperator(input: OperatorInput): Promise<{ user: UserView; password: string }>;
  /** Creates `admin@havre.localhost` with a random password when no staff exists; else null. */
  ensureFirstOperator(): Promise<{ email: string; password: string } | null>;
  listStaff(): Promise<UserView[]>;
}

export interface AccountsModule extends HavreModule {
  service: AccountsService;
}

export function createAccountsModule(core: Core): AccountsModule {
  const deps: AccountsDeps = {
    db: core.db,
    clock: core.clock,
    secrets: core.secrets,
    audit: core.audit,
    mailer: core.mailer,
    // Every change that affects who a session/token is, or a member's role, clears this node's auth cache.
    users: invalidating(createAccountsRepo(core.db), ['updateUser', 'revokeSession', 'revokeUserSessions', 'clearSecondFactorPending', 'revokeApiToken', 'revokeUserApiTokens'], core.authCache.forgetAll),
    customers: invalidating(createCustomersRepo(core.db), ['insertMembership', 'updateRole', 'deleteMembership'], core.authCache.forgetAll),
    auth: core.config.auth,
    baseUrl: publicBaseUrl(core.config),
  };
  const services: AccountsServices = {
    identity: createIdentityService(deps),
    signIn: createSignInService(deps),
    passwordResets: createPasswordResetService({ ...deps, log: core.logger }),
    customers: createCustomersService(deps),
    invitations: createInvitationsService(deps),
    staff: createStaffService(deps),
    memberData: createMemberDataService(deps),
  };
  const settings = { secureCookies: core.config.env === 'production' || (core.config.http.publicUrl ?? '').startsWith('https:') };
  const routes = lazyRoutes(async () => {
    const [accounts, customers, pages, memberData] = await Promise.all([
      import('./accounts-routes.ts'),
      import('./customers-routes.ts'),
      import('./accounts-pages.ts'),
      import('./member-data-routes.ts'),
    ]);
    return async (app) => {
      await accounts.accountsRoutes(services, settings)(app);
      await customers.customersRoutes(services, settings)(app);
      await pages.accountsPages(services)(app);
      await memberData.memberDataRoutes(services.memberData)(app);
    };
  });
  return {
    routes,
    // Failed sign-ins are purged by the retention rule `sign_in_failures` (accounts-retention.ts, PRV-4).
    start: () => {
      return async () => {
        // Reset requests are worked on after their answer: let them finish before the database closes.
        await services.passwordResets.drain();
      };
    },
    service: {
      createOperator: (input) => services.staff.createOperator(input),
      ensureFirstOperator: () => services.staff.ensureFirstOperator(),
      listStaff: () => services.staff.listStaff(),
    },
  };
}
