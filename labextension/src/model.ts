/**
 * The runs of the active notebook, polled from the server while a notebook is active.
 * The panel and the cell badges both read it and redraw on `changed`.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { fetchRuns } from './api';
import type { IRunsReply } from './tokens';

/** How often the runs are read while a notebook is active (milliseconds). */
export const POLL_INTERVAL = 2000;

export class RunsModel {
  private _path: string | null = null;
  private _reply: IRunsReply | null = null;
  private _error: string | null = null;
  private _changed = new Signal<this, void>(this);
  private _timer: number | null = null;
  private _inFlight = false;
  private _again = false;
  private _lastText = '';

  /** The notebook whose runs are shown (a contents path), or null. */
  get path(): string | null {
    return this._path;
  }

  get reply(): IRunsReply | null {
    return this._reply;
  }

  /** What went wrong on the last read, in words, or null. */
  get error(): string | null {
    return this._error;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  setPath(path: string | null): void {
    if (path === this._path) {
      return;
    }
    this._path = path;
    this._reply = null;
    this._error = null;
    this._lastText = '';
    this._changed.emit();
    void this.refresh();
  }

  /** Start polling every POLL_INTERVAL while the page is visible and a notebook is set. */
  start(): void {
    if (this._timer === null) {
      this._timer = window.setInterval(() => {
        if (document.visibilityState === 'visible') {
          void this.refresh();
        }
      }, POLL_INTERVAL);
    }
  }

  dispose(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
    Signal.clearData(this);
  }

  /** Read the runs now; concurrent calls collapse into one more read afterwards. */
  async refresh(): Promise<void> {
    if (this._inFlight) {
      this._again = true;
      return;
    }
    const path = this._path;
    if (!path) {
      return;
    }
    this._inFlight = true;
    try {
      const reply = await fetchRuns(path);
      if (path !== this._path) {
        return; // the user switched notebooks meanwhile
      }
      const text = JSON.stringify(reply);
      const changed = text !== this._lastText || this._error !== null;
      this._reply = reply;
      this._error = null;
      this._lastText = text;
      if (changed || reply.runs.some(run => run.status === 'running')) {
        this._changed.emit();
      }
    } catch (error) {
      if (path === this._path) {
        const message = error instanceof Error ? error.message : String(error);
        const changed = message !== this._error;
        this._error = message;
        this._reply = null;
        this._lastText = '';
        if (changed) {
          this._changed.emit();
        }
      }
    } finally {
      this._inFlight = false;
      if (this._again) {
        this._again = false;
        void this.refresh();
      }
    }
  }
}
