import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

/**
 * A modal <dialog>: the rest of the page is inert while it is open. With `onClose`, Escape closes it;
 * without, it is blocking: Escape does nothing (and a close the browser forces reopens it).
 */
export function Modal({ labelledBy, testId, onClose, children }: { labelledBy: string; testId: string; onClose?: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  const unmounted = useRef(false);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => {
      unmounted.current = true;
      dialog?.close();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      class="modal"
      aria-labelledby={labelledBy}
      data-testid={testId}
      onCancel={(e) => {
        if (!onClose) e.preventDefault();
      }}
      onClose={() => {
        if (unmounted.current) return;
        if (onClose) onClose();
        else ref.current?.showModal();
      }}
    >
      {children}
    </dialog>
  );
}
