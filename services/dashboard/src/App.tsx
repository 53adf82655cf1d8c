import { lazy, Suspense, useEffect, useRef, type ReactNode } from "react";
import { Navigate, NavLink, Route, Routes, useLocation } from "react-router-dom";
import { AuthProvider, useAuth } from "./auth";
import { ChangesProvider, useStreamState } from "./changes";
import { SignIn } from "./pages/SignIn";

const Overview = lazy(() => import("./pages/Overview"));
const Agents = lazy(() => import("./pages/Agents"));
const AgentDetail = lazy(() => import("./pages/AgentDetail"));
const DeadLetters = lazy(() => import("./pages/DeadLetters"));
const Workflows = lazy(() => import("./pages/Workflows"));
const ExecutionDetail = lazy(() => import("./pages/ExecutionDetail"));
const Logs = lazy(() => import("./pages/Logs"));
const Metrics = lazy(() => import("./pages/Metrics"));
const Settings = lazy(() => import("./pages/Settings"));

const STREAM_TEXT = {
  connecting: "Live updates: connecting",
  open: "Live updates: on",
  reconnecting: "Live updates: reconnecting",
  closed: "Live updates: off",
} as const;

function Shell({ children }: { children: ReactNode }) {
  const { signOut, caller } = useAuth();
  const stream = useStreamState();
  const location = useLocation();
  const main = useRef<HTMLElement>(null);
  // Move focus to the new page's content on navigation, for keyboard and screen reader users.
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.focus();
  }, [location.pathname]);

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">CodeValdCortex</span>
        <nav aria-label="Main">
          <ul>
            <li>
              <NavLink to="/" end>
                Overview
              </NavLink>
            </li>
            <li>
              <NavLink to="/agents">Agents</NavLink>
            </li>
            <li>
              <NavLink to="/dlq">Dead letters</NavLink>
            </li>
            <li>
              <NavLink to="/workflows">Workflows</NavLink>
            </li>
            <li>
              <NavLink to="/logs">Logs</NavLink>
            </li>
            <li>
              <NavLink to="/metrics">Metrics</NavLink>
            </li>
            <li>
              <NavLink to="/settings">Settings</NavLink>
            </li>
          </ul>
        </nav>
        <span className={`stream stream-${stream}`} role="status">
          {STREAM_TEXT[stream]}
        </span>
        {caller && (
          <span className="caller">
            {caller.name} ({caller.role})
          </span>
        )}
        <button type="button" onClick={() => signOut()}>
          Sign out
        </button>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        <Suspense fallback={<p aria-busy="true">Loading…</p>}>{children}</Suspense>
      </main>
    </>
  );
}

function Protected() {
  const { token } = useAuth();
  const location = useLocation();
  if (!token) return <Navigate to="/signin" replace state={{ from: location.pathname + location.search }} />;
  return (
    <ChangesProvider token={token}>
      <Shell>
        <Routes>
          <Route path="/" element={<Overview />} />
          <Route path="/agents" element={<Agents />} />
          <Route path="/agents/:ref" element={<AgentDetail />} />
          <Route path="/dlq" element={<DeadLetters />} />
          <Route path="/workflows" element={<Workflows />} />
          <Route path="/executions/:id" element={<ExecutionDetail />} />
          <Route path="/logs" element={<Logs />} />
          <Route path="/metrics" element={<Metrics />} />
          <Route path="/settings" element={<Settings />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </Shell>
    </ChangesProvider>
  );
}

function NotFound() {
  return (
    <>
      <h1>Not found</h1>
      <p>
        No page here. <NavLink to="/">Go to the overview</NavLink>.
      </p>
    </>
  );
}

export function App() {
  return (
    <AuthProvider>
      <Routes>
        <Route path="/signin" element={<SignIn />} />
        <Route path="/*" element={<Protected />} />
      </Routes>
    </AuthProvider>
  );
}
