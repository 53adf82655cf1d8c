import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { ApiError, TOKEN_KEY, api, getToken, onUnauthorized, unwrap, type Schemas } from "./api/client";

export type Caller = Schemas["Caller"];
export type Role = Caller["role"];
const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

interface AuthValue {
  token: string | null;
  /** The token's name and role from `GET /api/v1/whoami`; null while unknown. */
  caller: Caller | null;
  /** Why the user was sent back to sign-in, if they were. */
  notice: string | null;
  signIn: (token: string) => Promise<void>;
  signOut: (notice?: string) => void;
}

const AuthContext = createContext<AuthValue | null>(null);

function whoami(token: string) {
  return unwrap(api.GET("/api/v1/whoami", { headers: { Authorization: `Bearer ${token}` } }));
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [token, setToken] = useState<string | null>(() => getToken());
  const [caller, setCaller] = useState<Caller | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const signOut = useCallback((why?: string) => {
    sessionStorage.removeItem(TOKEN_KEY);
    setToken(null);
    setCaller(null);
    setNotice(why ?? null);
  }, []);

  const signIn = useCallback(async (candidate: string) => {
    const value = candidate.trim();
    if (!value) throw new Error("Enter an API token.");
    let who: Caller;
    try {
      // Checks the token (any role may ask) and learns its role; the header is set here.
      who = await whoami(value);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        throw new Error("The gateway did not accept this token.");
      }
      throw e;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    setNotice(null);
    setCaller(who);
    setToken(value);
  }, []);

  // A token kept from earlier in this tab: learn its role again.
  useEffect(() => {
    if (!token || caller) return;
    let live = true;
    whoami(token)
      .then((who) => live && setCaller(who))
      .catch(() => undefined); // a 401 signs out through the middleware
    return () => {
      live = false;
    };
  }, [token, caller]);

  useEffect(
    () =>
      onUnauthorized(() => {
        if (getToken() !== null) signOut("Your token was refused (401): sign in again.");
      }),
    [signOut],
  );

  const value = useMemo(() => ({ token, caller, notice, signIn, signOut }), [token, caller, notice, signIn, signOut]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside AuthProvider");
  return value;
}

/**
 * Whether the signed-in token's role is at least `min`. Reads need `viewer`, changes
 * `operator`, platform administration (and purging dead letters) `admin`. While the role is
 * unknown nothing is hidden: the gateway's 403 is shown instead.
 */
export function useCan(): (min: Role) => boolean {
  const value = useContext(AuthContext);
  const role = value?.caller?.role;
  return (min) => role === undefined || RANK[role] >= RANK[min];
}
